"""check-access and usage intake, as the business's services call them."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from licensing.models import CustomerPlan, Plan, UsageEvent
from licensing.services import customer_plan_apply
from tests.accounts.factories import MembershipFactory

from .api_calls import on_plan

CHECK = reverse("api_check_access")
USAGE = reverse("api_usage")


def check(api, customer_id, feature, requested_usage=None):
    body = {"customer_id": customer_id, "feature": feature}
    if requested_usage is not None:
        body["requested_usage"] = requested_usage
    return api.post(CHECK, body, content_type="application/json")


def report(api, customer_id, feature="api_calls", quantity=1, key=None, **extra):
    body = {
        "customer_id": customer_id,
        "feature": feature,
        "quantity": quantity,
        "idempotency_key": key or uuid.uuid4().hex,
        **extra,
    }
    return api.post(USAGE, body, content_type="application/json")


@pytest.fixture
def trial_customer(membership, other_membership, catalog):
    return membership.customer


def test_without_a_key_the_api_answers_401(client, trial_customer):
    response = check(client, trial_customer.customer_id, "api_calls")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("header", ["Bearer bp_nope", "Bearer ", "Basic abc"])
def test_a_wrong_key_answers_401(client, trial_customer, header):
    response = client.post(
        CHECK,
        {"customer_id": trial_customer.customer_id, "feature": "api_calls"},
        content_type="application/json",
        HTTP_AUTHORIZATION=header,
    )
    assert response.status_code == 401


def test_a_revoked_key_answers_401(api, trial_customer):
    from licensing.models import ServiceAPIKey

    ServiceAPIKey.objects.update(revoked_at=timezone.now())
    response = check(api, trial_customer.customer_id, "api_calls")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_trial_customer_may_use_a_trial_feature(api, trial_customer):
    response = check(api, trial_customer.customer_id, "api_calls")
    assert response.status_code == 200
    body = response.json()
    assert body["has_access"] is True
    assert body["reason"] == "ok"
    assert body["plan"] == "trial"
    assert body["usage"]["used"] == 0
    assert body["usage"]["limit"] == 1000
    assert body["usage"]["remaining"] == 1000
    assert body["soft_limit"] == {"limit": 800, "exceeded": False}


@pytest.mark.parametrize(
    ("moment", "resets_at"),
    [
        ("2026-05-14T12:00:00+00:00", "2026-06-01T00:00:00Z"),
        ("2026-12-31T23:59:59+00:00", "2027-01-01T00:00:00Z"),
        ("2028-02-29T08:00:00+00:00", "2028-03-01T00:00:00Z"),
        # 00:30 on 1 March in Paris is still February in UTC, where periods are counted.
        ("2028-03-01T00:30:00+01:00", "2028-03-01T00:00:00Z"),
    ],
)
def test_a_trial_monthly_limit_resets_at_the_next_utc_month(api, catalog, moment, resets_at):
    with time_machine.travel(moment, tick=False):
        customer = MembershipFactory().customer
        body = check(api, customer.customer_id, "api_calls").json()
    assert (body["has_access"], body["usage"]["resets_at"]) == (True, resets_at)


def test_unknown_customer(api, trial_customer):
    response = check(api, "cust_" + "0" * 32, "api_calls")
    assert response.status_code == 403
    assert response.json()["reason"] == "customer_not_found"


def test_feature_not_in_plan(api, trial_customer):
    response = check(api, trial_customer.customer_id, "sso")
    assert response.status_code == 403
    assert response.json()["reason"] == "feature_not_in_plan"


def test_boolean_feature_of_a_paid_plan(api, trial_customer):
    on_plan(trial_customer, "pro")
    body = check(api, trial_customer.customer_id, "sso").json()
    assert (body["has_access"], body["plan"], body["usage"]) == (True, "pro", None)


def test_trial_expired(api, trial_customer):
    trial_customer.trial_ends_at = timezone.now() - timedelta(seconds=1)
    trial_customer.save()
    response = check(api, trial_customer.customer_id, "api_calls")
    assert response.status_code == 403
    assert response.json()["reason"] == "trial_expired"


def test_no_active_plan_after_cancellation(api, trial_customer):
    trial_customer.trial_ends_at = timezone.now() - timedelta(days=30)
    trial_customer.save()
    on_plan(trial_customer, "pro", CustomerPlan.Status.CANCELED)
    response = check(api, trial_customer.customer_id, "api_calls")
    assert response.status_code == 403
    assert response.json()["reason"] == "no_active_plan"


def test_past_due_without_a_recorded_start_has_no_grace(api, trial_customer):
    on_plan(trial_customer, "pro", CustomerPlan.Status.PAST_DUE)
    response = check(api, trial_customer.customer_id, "api_calls")
    assert response.status_code == 403
    assert response.json()["reason"] == "past_due"
    assert response.json()["warning"] is None


def apply_status(customer, status, period_start):
    customer_plan_apply(
        customer=customer,
        plan=Plan.objects.get(code="pro"),
        status=status,
        current_period_start=period_start,
        current_period_end=period_start + timedelta(days=30),
        cancel_at_period_end=False,
        subscription_id="sub_test",
    )


FAILED_AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_past_due_keeps_access_for_the_grace_then_refuses(api, trial_customer, settings):
    settings.PAST_DUE_GRACE_DAYS = 7
    period_start = FAILED_AT - timedelta(days=1)
    with time_machine.travel(period_start, tick=False):
        apply_status(trial_customer, CustomerPlan.Status.ACTIVE, period_start)
    with time_machine.travel(FAILED_AT, tick=False):
        apply_status(trial_customer, CustomerPlan.Status.PAST_DUE, period_start)
    # Stripe retries the payment and sends the same state again: the grace does not restart.
    with time_machine.travel(FAILED_AT + timedelta(days=3), tick=False):
        apply_status(trial_customer, CustomerPlan.Status.PAST_DUE, period_start)
    assert CustomerPlan.objects.get(customer=trial_customer).past_due_since == FAILED_AT

    grace_ends_at = FAILED_AT + timedelta(days=7)
    for moment in (FAILED_AT + timedelta(days=4), grace_ends_at - timedelta(seconds=1)):
        with time_machine.travel(moment, tick=False):
            response = check(api, trial_customer.customer_id, "api_calls", requested_usage=1)
        assert response.status_code == 200, moment
        body = response.json()
        assert (body["has_access"], body["reason"], body["plan"]) == (True, "ok", "pro")
        assert body["grace_ends_at"] == "2026-03-17T12:00:00Z"
        assert body["warning"] == "payment_past_due"
        assert body["usage"]["limit"] is not None

    for moment in (grace_ends_at, grace_ends_at + timedelta(seconds=1)):
        with time_machine.travel(moment, tick=False):
            response = check(api, trial_customer.customer_id, "api_calls")
        assert response.status_code == 403, moment
        body = response.json()
        assert (body["has_access"], body["reason"]) == (False, "past_due")
        assert (body["grace_ends_at"], body["warning"]) == (None, None)


def test_a_payment_ends_the_grace_at_once(api, trial_customer):
    period_start = FAILED_AT - timedelta(days=1)
    with time_machine.travel(FAILED_AT, tick=False):
        apply_status(trial_customer, CustomerPlan.Status.PAST_DUE, period_start)
    with time_machine.travel(FAILED_AT + timedelta(days=2), tick=False):
        apply_status(trial_customer, CustomerPlan.Status.ACTIVE, period_start)
        response = check(api, trial_customer.customer_id, "api_calls")
    assert CustomerPlan.objects.get(customer=trial_customer).past_due_since is None
    assert response.status_code == 200
    assert (response.json()["grace_ends_at"], response.json()["warning"]) == (None, None)
    # A later failure starts a new grace from its own moment.
    again = FAILED_AT + timedelta(days=20)
    with time_machine.travel(again, tick=False):
        apply_status(trial_customer, CustomerPlan.Status.PAST_DUE, period_start)
        response = check(api, trial_customer.customer_id, "api_calls")
    assert response.json()["grace_ends_at"] == "2026-04-06T12:00:00Z"


def test_check_access_in_the_grace_takes_the_same_queries(api, trial_customer):
    period_start = FAILED_AT - timedelta(days=1)
    with time_machine.travel(FAILED_AT, tick=False):
        apply_status(trial_customer, CustomerPlan.Status.PAST_DUE, period_start)
        report(api, trial_customer.customer_id, quantity=3)
        check(api, trial_customer.customer_id, "api_calls")  # the catalog's limits, read once
        with CaptureQueriesContext(connection) as queries:
            response = check(api, trial_customer.customer_id, "api_calls", requested_usage=1)
    assert response.json()["warning"] == "payment_past_due"
    assert response.json()["usage"]["used"] == 3
    assert len(queries) == 1, [q["sql"] for q in queries]


def test_usage_counts_at_once_and_limits_requests(api, trial_customer, other_membership):
    assert report(api, trial_customer.customer_id, quantity=790).status_code == 201
    report(api, other_membership.customer.customer_id, quantity=500)  # someone else's

    fits = check(api, trial_customer.customer_id, "api_calls", requested_usage=210).json()
    assert (fits["has_access"], fits["usage"]["used"], fits["usage"]["remaining"]) == (
        True, 790, 210
    )  # fmt: skip
    crosses = check(api, trial_customer.customer_id, "api_calls", requested_usage=211)
    assert crosses.status_code == 403
    assert crosses.json()["reason"] == "usage_limit_exceeded"

    report(api, trial_customer.customer_id, quantity=20)
    soft = check(api, trial_customer.customer_id, "api_calls").json()
    assert soft["has_access"] is True
    assert soft["soft_limit"] == {"limit": 800, "exceeded": True}

    report(api, trial_customer.customer_id, quantity=190)
    full = check(api, trial_customer.customer_id, "api_calls").json()
    assert (full["has_access"], full["reason"], full["usage"]["remaining"]) == (
        True, "ok", 0
    )  # fmt: skip
    over = check(api, trial_customer.customer_id, "api_calls", requested_usage=1)
    assert over.json()["reason"] == "usage_limit_exceeded"


def test_paid_plan_usage_counts_in_the_billing_period(api, trial_customer):
    on_plan(trial_customer, "starter")
    report(api, trial_customer.customer_id, quantity=5)
    report(
        api, trial_customer.customer_id, quantity=100,
        timestamp=(timezone.now() - timedelta(days=10)).isoformat(),
    )  # fmt: skip  # before this period: not counted in it
    body = check(api, trial_customer.customer_id, "api_calls").json()
    assert body["usage"]["used"] == 5
    assert body["usage"]["limit"] == 10_000
    plan = CustomerPlan.objects.get(customer=trial_customer)
    assert body["usage"]["resets_at"] == plan.current_period_end.isoformat().replace("+00:00", "Z")


def test_the_same_idempotency_key_is_recorded_once(api, trial_customer):
    first = report(api, trial_customer.customer_id, quantity=7, key="k-1")
    again = report(api, trial_customer.customer_id, quantity=7, key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert UsageEvent.objects.count() == 1
    assert check(api, trial_customer.customer_id, "api_calls").json()["usage"]["used"] == 7


def test_a_batch_is_recorded_whole(api, trial_customer, other_membership):
    batch = [
        {"customer_id": trial_customer.customer_id, "feature": "api_calls", "quantity": 2,
         "idempotency_key": "b-1"},
        {"customer_id": other_membership.customer.customer_id, "feature": "projects",
         "quantity": 1, "idempotency_key": "b-2"},
    ]  # fmt: skip
    response = api.post(USAGE, batch, content_type="application/json")
    assert response.status_code == 201
    assert [item["idempotency_key"] for item in response.json()] == ["b-1", "b-2"]

    bad = [*batch, {**batch[0], "idempotency_key": "b-3", "feature": "nope"}]
    assert api.post(USAGE, bad, content_type="application/json").status_code == 400
    assert not UsageEvent.objects.filter(idempotency_key="b-3").exists()


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"quantity": -5}, "quantity", "min_value"),
        ({"quantity": 0}, "quantity", "min_value"),
        ({"quantity": "many"}, "quantity", "invalid"),
        ({"idempotency_key": ""}, "idempotency_key", "blank"),
        ({"feature": "nope"}, "feature", "unknown_feature"),
        ({"feature": "sso"}, "feature", "feature_not_metered"),
        ({"customer_id": "42"}, "customer_id", "invalid"),
        ({"timestamp": "yesterday"}, "timestamp", "invalid"),
    ],
)
def test_bad_usage_input_is_400_with_a_code_per_field(api, trial_customer, body, field, code):
    body = dict(body)
    response = report(api, body.pop("customer_id", trial_customer.customer_id), **body)
    assert response.status_code == 400
    assert response.json()["error"]["fields"][field][0]["code"] == code
    assert not UsageEvent.objects.exists()


def test_missing_fields_are_named(api, trial_customer):
    missing = {
        "customer_id": "required",
        "feature": "required",
        "quantity": "required",
        "idempotency_key": "required",
    }
    response = api.post(USAGE, {}, content_type="application/json")
    fields = response.json()["error"]["fields"]
    assert {name: f[0]["code"] for name, f in fields.items()} == missing
    # In a batch, by the item's index.
    response = api.post(USAGE, [{}], content_type="application/json")
    fields = response.json()["error"]["fields"]["0"]
    assert {name: f[0]["code"] for name, f in fields.items()} == missing


def test_bad_check_access_input_is_400(api, trial_customer):
    response = api.post(CHECK, {"feature": "x", "requested_usage": -1},
                        content_type="application/json")  # fmt: skip
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields["customer_id"][0]["code"] == "required"
    assert fields["requested_usage"][0]["code"] == "min_value"


def test_usage_for_an_unknown_customer_is_404(api, trial_customer):
    response = report(api, "cust_" + "0" * 32)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"


def test_check_access_is_answered_from_local_state_in_a_few_queries(api, trial_customer):
    on_plan(trial_customer, "pro")
    report(api, trial_customer.customer_id, quantity=3)
    check(api, trial_customer.customer_id, "api_calls")  # the catalog's limits, read once
    with CaptureQueriesContext(connection) as queries:
        response = check(api, trial_customer.customer_id, "api_calls", requested_usage=1)
    assert response.status_code == 200
    assert response.json()["usage"]["used"] == 3
    # One: the customer with their plan and the period's total. The service key is
    # remembered from the call before, the catalog's limits are in memory.
    assert len(queries) == 1, [q["sql"] for q in queries]


@pytest.mark.django_db(transaction=True)
def test_one_key_sent_100_times_at_once_counts_once(service_key, membership, other_membership):
    import threading

    from django.db import connection as conn
    from django.test import Client

    from licensing.catalog import catalog_read
    from licensing.services import catalog_load

    if conn.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (CI runs it there)")
    catalog_load(catalog=catalog_read())
    barrier = threading.Barrier(100)
    statuses = []

    def send():
        client = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
        try:
            barrier.wait()
            statuses.append(
                report(client, membership.customer.customer_id, quantity=3, key="same").status_code
            )
        finally:
            conn.close()

    threads = [threading.Thread(target=send) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [201] * 100
    assert UsageEvent.objects.filter(idempotency_key="same").count() == 1
    api = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
    assert check(api, membership.customer.customer_id, "api_calls").json()["usage"]["used"] == 3


@pytest.mark.django_db(transaction=True)
def test_one_key_sent_at_once_with_two_quantities_records_one_and_refuses_the_other(
    service_key, membership, other_membership
):
    import threading

    from django.db import connection as conn
    from django.test import Client

    from licensing.catalog import catalog_read
    from licensing.services import catalog_load

    if conn.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (CI runs it there)")
    catalog_load(catalog=catalog_read())
    barrier = threading.Barrier(40)
    answers = []

    def send(quantity):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
        try:
            barrier.wait()
            response = report(client, membership.customer.customer_id, quantity=quantity, key="k")
            answers.append((quantity, response.status_code))
        finally:
            conn.close()

    threads = [threading.Thread(target=send, args=(1 + i % 2,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    event = UsageEvent.objects.get(idempotency_key="k")
    assert sorted(answers) == sorted(
        (quantity, 201 if quantity == event.quantity else 409) for quantity, _ in answers
    )
    assert len(answers) == 40
    api = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
    used = check(api, membership.customer.customer_id, "api_calls").json()["usage"]["used"]
    assert used == event.quantity


def test_openapi_schema_and_docs(client, db):
    schema = client.get(reverse("api_schema"))
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/check-access", "/api/v1/usage", "/api/v1/me/"):
        assert path in text
    assert "serviceKey" in text
    docs = client.get(reverse("api_docs"))
    assert docs.status_code == 200
    assert b"redoc" in docs.content.lower()
