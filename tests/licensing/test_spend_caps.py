"""Spend caps and usage alerts: a stop cap refuses the use that would cost past it
(`spend_cap_reached`), each threshold crossing is emailed and sent as a webhook once per
cycle, lowering a cap below the spend acts at once, and the usage page's form refuses bad
input with errors."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.rating import Price, usage_rate
from licensing.models import CustomerPlan, Plan, PlanFeature, SpendCap, SpendCapCrossing
from licensing.spend import spend_cap_set, use_cost
from outgoing.models import Endpoint, Event
from tests.licensing.api_calls import CHECK, USAGE, post, usage

NOW = datetime(2026, 4, 15, 12, tzinfo=UTC)
# Pro: 100,000 calls included, then €2.00 per started 10,000, at most 1,000,000.


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def on_pro(customer, start=NOW - timedelta(days=14)):
    CustomerPlan.objects.update_or_create(
        customer=customer,
        defaults={
            "plan": Plan.objects.get(code="pro"),
            "status": CustomerPlan.Status.ACTIVE,
            "current_period_start": start,
            "current_period_end": start + timedelta(days=30),
            "subscription_id": "sub_1",
        },
    )


@pytest.fixture
def customer(membership, other_membership, catalog):
    on_pro(membership.customer)
    on_pro(other_membership.customer)
    return membership.customer


@pytest.fixture
def service(service_key):
    return Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")


@pytest.fixture
def endpoint(db):
    # Nothing listens there: each delivery fails fast (the delivery itself is tested in
    # tests/outgoing); what counts here is what was emitted.
    return Endpoint.objects.create(url="http://127.0.0.1:9/", event_types=["spend_cap.crossed"])


def check(api, customer, requested):
    body = {"customer_id": customer.pk, "feature": "api_calls", "requested_usage": requested}
    return post(api, CHECK, body)


def consume(api, customer, quantity, key):
    body = {
        "customer_id": customer.pk, "feature": "api_calls", "requested_usage": quantity,
        "consume": True, "idempotency_key": key,
    }  # fmt: skip
    return post(api, CHECK, body)


def report(api, customer, quantity, capture):
    with capture(execute=True):
        assert post(api, USAGE, usage(customer.pk, quantity=quantity)).status_code == 201


def spend_emails(mailoutbox):
    return [m for m in mailoutbox if "spend cap" in m.subject]


@pytest.mark.parametrize("used", [0, 1, 99_999, 100_000, 100_001, 110_000, 110_001, 2_000_000])
def test_the_cost_of_use_is_the_invoices_rule(catalog, used):
    priced = PlanFeature.objects.get(plan__code="pro", feature__key="api_calls")
    price = Price(
        unit_amount=priced.unit_amount, included=priced.included, per=priced.per,
        limit=priced.limit,
    )  # fmt: skip
    assert use_cost(used=used, priced=priced) == usage_rate(used=used, price=price).amount


def test_a_stop_cap_refuses_the_request_that_would_cross_it(service, customer, other_membership):
    """Must show 3 (first half)."""
    spend_cap_set(
        customer=customer, feature="api_calls", amount=1000, thresholds=[100], mode="stop"
    )
    post(service, USAGE, usage(customer.pk, quantity=140_000))  # €8.00 of the €10.00
    # €10.00 buys 5 blocks beyond the included: 150,000 calls in all.
    assert check(service, customer, 10_000).status_code == 200
    refused = check(service, customer, 10_001)
    assert refused.status_code == 403
    assert refused.json()["reason"] == "spend_cap_reached"
    assert consume(service, customer, 10_000, "a").status_code == 200
    last = consume(service, customer, 1, "b")
    assert (last.status_code, last.json()["reason"]) == (403, "spend_cap_reached")
    assert last.json()["usage"]["used"] == 150_000
    # The other customer has no cap.
    assert check(service, other_membership.customer, 500_000).status_code == 200


def test_a_stop_cap_on_the_invoice_total_counts_the_plan_price(service, customer):
    # €49.00 plan + €6.00 of use = €55.00: 3 blocks, 130,000 calls.
    spend_cap_set(customer=customer, feature=None, amount=5500, thresholds=[100], mode="stop")
    assert check(service, customer, 130_000).status_code == 200
    assert check(service, customer, 130_001).json()["reason"] == "spend_cap_reached"


def test_an_alert_only_cap_never_refuses(service, customer):
    spend_cap_set(
        customer=customer, feature="api_calls", amount=200, thresholds=[100], mode="alert"
    )
    assert check(service, customer, 900_000).status_code == 200


def test_each_threshold_crossing_emails_and_webhooks_exactly_once_per_cycle(
    service, customer, endpoint, mailoutbox, django_capture_on_commit_callbacks
):
    """Must show 3 (second half): 50 %, 80 % and 100 % of €10.00 on API calls."""
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        spend_cap_set(
            customer=customer, feature="api_calls", amount=1000, thresholds=[50, 80, 100],
            mode="alert",
        )  # fmt: skip
    crossed = []
    for quantity in (100_000, 20_001, 9_999, 10_000, 10_000, 30_000, 1):
        report(service, customer, quantity, capture)
        crossed.append(sorted(SpendCapCrossing.objects.values_list("threshold", flat=True)))
    # €0, €6.00 (50 %: a started block is billed whole), €6.00, €8.00 (80 %), €10.00
    # (100 %), €16.00, €18.00
    assert crossed == [[], [50], [50], [50, 80], [50, 80, 100], [50, 80, 100], [50, 80, 100]]
    events = Event.objects.filter(type="spend_cap.crossed")
    assert sorted(e.data["threshold_percent"] for e in events) == [50, 80, 100]
    assert {e.data["spend"] for e in events} == {600, 800, 1000}
    emails = spend_emails(mailoutbox)
    assert sorted(m.subject for m in emails) == [
        "100% of your spend cap on API calls reached",
        "50% of your spend cap on API calls reached",
        "80% of your spend cap on API calls reached",
    ]
    assert all(m.to == ["owner@example.com"] for m in emails)
    assert "€6.00" in next(m.body for m in emails if m.subject.startswith("50%"))

    # The next cycle starts afresh: told again once its spend gets there.
    with time_machine.travel(NOW + timedelta(days=30), tick=False):
        on_pro(customer, start=NOW + timedelta(days=16))
        report(service, customer, 120_001, capture)  # €6.00: 50 % of this cycle's cap
        report(service, customer, 9_999, capture)  # still €6.00
    assert Event.objects.filter(type="spend_cap.crossed").count() == 4
    assert len(spend_emails(mailoutbox)) == 4


def test_lowering_a_cap_below_the_spend_acts_at_once(
    service, customer, endpoint, mailoutbox, django_capture_on_commit_callbacks
):
    post(service, USAGE, usage(customer.pk, quantity=140_000))  # €8.00
    spend_cap_set(customer=customer, feature="api_calls", amount=5000, thresholds=[50], mode="stop")
    assert check(service, customer, 1).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        spend_cap_set(
            customer=customer, feature="api_calls", amount=500, thresholds=[50, 100], mode="stop"
        )
    refused = check(service, customer, 0)
    assert (refused.status_code, refused.json()["reason"]) == (403, "spend_cap_reached")
    assert SpendCap.objects.count() == 1  # replaced, not added
    assert sorted(SpendCapCrossing.objects.values_list("threshold", flat=True)) == [50, 100]
    assert len(spend_emails(mailoutbox)) == 2


def test_check_access_with_a_stop_cap_takes_a_fixed_number_of_queries(service, customer):
    spend_cap_set(customer=customer, feature=None, amount=9000, thresholds=[100], mode="stop")
    check(service, customer, 1)
    counts = []
    for quantity in (1, 1000):
        post(service, USAGE, usage(customer.pk, quantity=quantity))
        with CaptureQueriesContext(connection) as queries:
            assert check(service, customer, 1).status_code == 200
        counts.append(len(queries))
    # The customer with plan, the period's total and whether stop caps apply (the key is
    # remembered from the first call); then the caps, the plan, its priced features and
    # their totals.
    assert counts == [5, 5], counts


# --- The usage page's form -------------------------------------------------------------


@pytest.fixture
def page(signed_in_client, customer, settings):
    settings.BILLING_ENABLED = True
    return signed_in_client


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount", "-5", "greater than or equal to 0.01"),
        ("amount", "abc", "Enter a number."),
        ("amount", "10.001", "More decimals than the currency has."),
        ("thresholds", "-5", "“-5” is not a whole percentage"),
        ("thresholds", "fifty", "“fifty” is not a whole percentage"),
        ("thresholds", "50, 150", "150% is outside 1 to 100."),
        ("thresholds", "", "This field is required."),
    ],
)
def test_bad_cap_input_is_a_form_error_and_saves_nothing(page, field, value, message):
    data = {"scope": "api_calls", "amount": "10", "thresholds": "50, 80, 100", "mode": "stop"}
    response = page.post(reverse("billing:usage"), {**data, field: value})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert response.context["cap_form"].errors[field]
    assert not SpendCap.objects.exists()


def test_a_customer_sets_and_removes_a_cap_on_the_usage_page(page, customer, other_membership):
    response = page.post(
        reverse("billing:usage"),
        {"scope": "", "amount": "80.50", "thresholds": "50,80, 100%", "mode": "alert"},
    )
    assert response.status_code == 302
    cap = SpendCap.objects.get(customer=customer)
    assert (cap.feature, cap.amount, cap.thresholds, cap.mode) == (
        None,
        8050,
        [50, 80, 100],
        "alert",
    )
    html = page.get(reverse("billing:usage")).content.decode()
    assert "The invoice total" in html and "€80.50" in html
    theirs = spend_cap_set(
        customer=other_membership.customer, feature=None, amount=100, thresholds=[50], mode="stop"
    )
    assert page.post(reverse("billing:spend_cap_remove", args=[theirs.pk])).status_code == 404
    assert page.post(reverse("billing:spend_cap_remove", args=[cap.pk])).status_code == 302
    assert list(SpendCap.objects.all()) == [theirs]


def test_the_usage_page_takes_the_same_queries_with_1_and_5_caps(page, customer, catalog):
    from django.test.utils import CaptureQueriesContext as Capture

    spend_cap_set(customer=customer, feature=None, amount=100, thresholds=[50], mode="alert")
    page.get(reverse("billing:usage"))
    with Capture(connection) as one:
        page.get(reverse("billing:usage"))
    spend_cap_set(
        customer=customer, feature="api_calls", amount=100, thresholds=[5, 9], mode="stop"
    )
    with Capture(connection) as two:
        page.get(reverse("billing:usage"))
    assert len(one) == len(two)


def test_the_entitlements_reads_decide_with_the_stop_cap_as_check_access_does(service, customer):
    post(service, USAGE, usage(customer.pk, quantity=140_000))  # €8.00
    spend_cap_set(customer=customer, feature="api_calls", amount=500, thresholds=[50], mode="stop")
    url = reverse("api_customer_entitlements", kwargs={"customer_id": customer.pk})
    read = {e["feature"]: e for e in service.get(url).json()}
    assert read["api_calls"]["reason"] == "spend_cap_reached"
    assert read["sso"]["reason"] == "ok"  # on/off features cost nothing more
    assert check(service, customer, 0).json()["reason"] == "spend_cap_reached"


@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_consuming_under_a_stop_cap_on_the_invoice_total_never_pass_it(
    service_key,
):
    """Must show 2, for a cap: whatever the interleaving, the cost ends at the cap."""
    import threading

    from licensing.catalog import catalog_read
    from licensing.models import UsageTotal
    from licensing.services import catalog_load
    from tests.accounts.factories import MembershipFactory

    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (CI runs it there)")
    catalog_load(catalog=catalog_read())
    for round_number in range(10):
        customer = MembershipFactory().customer
        on_pro(customer)
        # €49.00 + €2.00 per 10,000 beyond 100,000: a €55.00 cap allows 130,000 calls.
        spend_cap_set(customer=customer, feature=None, amount=5500, thresholds=[100], mode="stop")
        api = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
        assert post(api, USAGE, usage(customer.pk, quantity=120_000)).status_code == 201
        barrier = threading.Barrier(16)
        answers = []

        def send(index, customer=customer, barrier=barrier, answers=answers, r=round_number):
            client = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
            try:
                barrier.wait()
                response = consume(client, customer, 1_000, key=f"cap-{r}-{index}")
                answers.append((response.status_code, response.json()["reason"]))
            finally:
                connection.close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers) == [(200, "ok")] * 10 + [(403, "spend_cap_reached")] * 6, answers
        used = UsageTotal.objects.get(customer=customer, feature__key="api_calls").used
        assert used == 130_000, f"round {round_number}"
