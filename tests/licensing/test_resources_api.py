"""Attaching and detaching billable resources, as the business's services do: once per
idempotency key, counted toward the limit at once, refused with a code when it contradicts
the ledger, and saying whether the time held is billed."""

import uuid
from datetime import timedelta

import pytest
import yaml
from django.urls import reverse
from django.utils import timezone

from licensing.models import CustomerPlan, ResourceEvent, UsageTotal
from tests.licensing.test_access_api import check, on_plan, report

ATTACH = reverse("api_attach")
DETACH = reverse("api_detach")


def post(api, url, customer_id, resource_id="proj_1", key=None, feature="projects", **extra):
    body = {
        "customer_id": customer_id,
        "feature": feature,
        "resource_id": resource_id,
        "idempotency_key": key or uuid.uuid4().hex,
        **extra,
    }
    return api.post(url, body, content_type="application/json")


@pytest.fixture
def customer(membership, other_membership, catalog):
    return membership.customer


def used(api, customer) -> int:
    return check(api, customer.customer_id, "projects").json()["usage"]["used"]


def test_attach_and_detach_count_toward_the_limit_at_once(api, customer, other_membership):
    other = other_membership.customer
    post(api, ATTACH, other.customer_id, "proj_other")  # another customer's, not counted
    for n in range(3):  # the trial allows 3 projects
        assert post(api, ATTACH, customer.customer_id, f"proj_{n}").status_code == 201
    assert used(api, customer) == 3
    assert check(api, customer.customer_id, "projects", 1).json()["has_access"] is False

    response = post(api, DETACH, customer.customer_id, "proj_1")
    assert response.status_code == 201
    assert response.json()["action"] == "detach"
    assert used(api, customer) == 2
    assert used(api, other) == 1


def test_the_same_key_is_recorded_once(api, customer):
    first = post(api, ATTACH, customer.customer_id, key="a-1")
    again = post(api, ATTACH, customer.customer_id, key="a-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert ResourceEvent.objects.count() == 1
    assert used(api, customer) == 1


@pytest.mark.parametrize(
    ("steps", "code"),
    [
        ([(ATTACH, "proj_1", "k1"), (ATTACH, "proj_1", "k2")], "resource_already_attached"),
        ([(DETACH, "proj_1", "k1")], "resource_not_attached"),
        ([(ATTACH, "proj_1", "k1"), (DETACH, "proj_1", "k2"), (DETACH, "proj_1", "k3")],
         "resource_not_attached"),
        ([(ATTACH, "proj_1", "k1"), (DETACH, "proj_1", "k1")], "idempotency_key_reused"),
        ([(ATTACH, "proj_1", "k1"), (ATTACH, "proj_2", "k1")], "idempotency_key_reused"),
    ],
)  # fmt: skip
def test_what_contradicts_the_ledger_is_a_409_and_changes_nothing(api, customer, steps, code):
    *before, last = steps
    for url, resource_id, key in before:
        assert post(api, url, customer.customer_id, resource_id, key).status_code == 201
    events, count = ResourceEvent.objects.count(), used(api, customer)
    response = post(api, last[0], customer.customer_id, last[1], last[2])
    assert response.status_code == 409
    assert response.json()["error"]["code"] == code
    assert (ResourceEvent.objects.count(), used(api, customer)) == (events, count)


def test_going_back_before_the_resources_last_change_is_refused(api, customer):
    now = timezone.now()
    post(api, ATTACH, customer.customer_id, timestamp=(now - timedelta(hours=1)).isoformat())
    response = post(
        api, DETACH, customer.customer_id, timestamp=(now - timedelta(hours=2)).isoformat()
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "out_of_order"
    detached = post(api, DETACH, customer.customer_id, timestamp=now.isoformat())
    assert detached.status_code == 201


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"feature": "nope"}, "feature", "unknown_feature"),
        ({"feature": "api_calls"}, "feature", "feature_not_held"),
        ({"feature": "sso"}, "feature", "feature_not_held"),
        ({"resource_id": ""}, "resource_id", "blank"),
        ({"resource_id": 12}, "resource_id", "invalid"),  # a JSON string, not a number
        ({"timestamp": 1767225600}, "timestamp", "invalid"),
        ({"idempotency_key": "x" * 256}, "idempotency_key", "max_length"),
        ({"timestamp": "yesterday"}, "timestamp", "invalid"),
        ({"customer_id": "cus_123"}, "customer_id", "invalid"),
    ],
)
def test_bad_input_is_a_400_with_a_code_per_field(api, customer, change, field, code):
    body = {
        "customer_id": customer.customer_id,
        "feature": "projects",
        "resource_id": "proj_1",
        "idempotency_key": "k",
        **change,
    }
    response = api.post(ATTACH, body, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["fields"][field][0]["code"] == code
    assert ResourceEvent.objects.count() == 0


def test_a_timestamp_in_the_future_is_refused(api, customer):
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    response = post(api, ATTACH, customer.customer_id, timestamp=later)
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["timestamp"][0]["code"] == "in_the_future"


def test_an_unknown_customer_is_a_404_and_no_key_a_401(api, client, customer):
    missing = "cust_" + uuid.uuid4().hex
    response = post(api, ATTACH, missing)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"
    client.defaults.pop("HTTP_AUTHORIZATION", None)
    assert post(client, ATTACH, customer.customer_id).status_code in {401, 403}
    assert not UsageTotal.objects.exists()


def test_without_a_paid_plan_use_counts_for_limits_and_the_answer_says_it_is_not_billed(
    api, customer
):
    """The free trial: counted toward the limits, billed nowhere, said so."""
    held = post(api, ATTACH, customer.customer_id).json()
    assert (held["billed"], held["not_billed_reason"]) == (False, "no_paid_plan")
    reported = report(api, customer.customer_id, quantity=5).json()
    assert (reported["billed"], reported["not_billed_reason"]) == (False, "no_paid_plan")
    assert used(api, customer) == 1


def test_on_a_paid_plan_priced_use_is_billed(api, customer):
    on_plan(customer, "pro")
    held = post(api, ATTACH, customer.customer_id).json()
    assert (held["billed"], held["not_billed_reason"]) == (True, None)
    reported = report(api, customer.customer_id, quantity=5).json()
    assert (reported["billed"], reported["not_billed_reason"]) == (True, None)
    on_plan(customer, "starter")  # Starter's API calls are capped, not priced
    reported = report(api, customer.customer_id, quantity=5).json()
    assert (reported["billed"], reported["not_billed_reason"]) == (False, "included_in_plan")
    on_plan(customer, "pro", status=CustomerPlan.Status.CANCELED)
    reported = report(api, customer.customer_id, quantity=5).json()
    assert reported["not_billed_reason"] == "no_paid_plan"


def test_both_endpoints_are_in_the_openapi_schema(client, db):
    schema = yaml.safe_load(client.get(reverse("api_schema")).content)
    for path in ("/api/v1/resources/attach", "/api/v1/resources/detach"):
        operation = schema["paths"][path]["post"]
        assert {"201", "400", "401", "404", "409"} <= set(operation["responses"])
    recorded = schema["components"]["schemas"]["ResourceRecorded"]["properties"]
    assert {"billed", "not_billed_reason", "resource_id"} <= set(recorded)


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_attaches_of_one_resource_record_one(
    service_key, membership, other_membership
):
    """Same resource, twenty keys at once: one attach, nineteen 409s, a count of one."""
    import threading

    from django.db import connection as conn
    from django.test import Client

    from licensing.catalog import catalog_read
    from licensing.services import catalog_load

    if conn.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (CI runs it there)")
    catalog_load(catalog=catalog_read())
    customer = membership.customer
    barrier = threading.Barrier(20)
    statuses = []

    def send(n):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
        try:
            barrier.wait()
            statuses.append(post(client, ATTACH, customer.customer_id, key=f"k{n}").status_code)
        finally:
            conn.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201] + [409] * 19
    assert ResourceEvent.objects.filter(customer=customer).count() == 1
    api = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
    assert used(api, customer) == 1
