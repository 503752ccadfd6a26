"""check-access with `consume: true`: the use is recorded only when access is granted, in
one step, once per idempotency key, and never past the limit however many call at once."""

import threading
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from licensing.models import UsageConsumption, UsageEvent, UsageTotal
from tests.accounts.factories import MembershipFactory
from tests.licensing.api_calls import CHECK, USAGE, post, usage

TRIAL_LIMIT = 1_000  # the catalog's trial api_calls limit


def consume(api, customer_id, quantity=1, key=None, feature="api_calls"):
    body = {
        "customer_id": customer_id,
        "feature": feature,
        "requested_usage": quantity,
        "consume": True,
        "idempotency_key": key or uuid.uuid4().hex,
    }
    return post(api, CHECK, body)


def used(customer):
    return sum(UsageTotal.objects.filter(customer=customer).values_list("used", flat=True))


@pytest.fixture
def customer(membership, other_membership, catalog):
    return membership.customer


def test_a_granted_consume_records_the_use_and_says_it_is_counted(api, customer):
    response = consume(api, customer.customer_id, quantity=7, key="c-1")
    assert response.status_code == 200
    body = response.json()
    assert body["has_access"] is True
    assert body["usage"]["used"] == 7
    assert body["usage"]["remaining"] == TRIAL_LIMIT - 7
    event = UsageEvent.objects.get(idempotency_key="c-1")
    assert (event.customer_id, event.quantity) == (customer.customer_id, 7)
    assert UsageConsumption.objects.get(idempotency_key="c-1").usage_event == event
    assert used(customer) == 7


def test_a_consume_past_the_limit_is_refused_and_records_nothing(api, customer):
    assert consume(api, customer.customer_id, quantity=TRIAL_LIMIT - 2).status_code == 200
    refused = consume(api, customer.customer_id, quantity=3, key="too-much")
    assert refused.status_code == 403
    assert refused.json()["reason"] == "usage_limit_exceeded"
    assert refused.json()["usage"]["used"] == TRIAL_LIMIT - 2
    assert not UsageEvent.objects.filter(idempotency_key="too-much").exists()
    assert consume(api, customer.customer_id, quantity=2).status_code == 200
    assert used(customer) == TRIAL_LIMIT


def test_a_repeat_of_the_key_answers_as_the_first_and_counts_once(api, customer):
    first = consume(api, customer.customer_id, quantity=5, key="same")
    consume(api, customer.customer_id, quantity=1)
    again = consume(api, customer.customer_id, quantity=5, key="same")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert used(customer) == 6
    assert UsageEvent.objects.filter(idempotency_key="same").count() == 1


def test_a_refused_consume_repeated_stays_refused_even_after_room_is_made(api, customer):
    post(api, USAGE, usage(customer.customer_id, quantity=TRIAL_LIMIT))
    first = consume(api, customer.customer_id, quantity=1, key="late")
    assert first.status_code == 403
    UsageTotal.objects.filter(customer=customer).update(used=0)
    again = consume(api, customer.customer_id, quantity=1, key="late")
    assert (again.status_code, again.json()) == (403, first.json())
    assert not UsageEvent.objects.filter(idempotency_key="late").exists()


def test_the_same_key_for_another_request_is_409(api, customer, other_membership):
    consume(api, customer.customer_id, quantity=5, key="k")
    for response in (
        consume(api, customer.customer_id, quantity=6, key="k"),
        consume(api, other_membership.customer.customer_id, quantity=5, key="k"),
    ):
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert used(customer) == 5
    assert used(other_membership.customer) == 0


def test_a_key_a_usage_report_took_is_409_and_counts_nothing(api, customer):
    post(api, USAGE, usage(customer.customer_id, quantity=2, key="reported"))
    response = consume(api, customer.customer_id, quantity=2, key="reported")
    assert response.status_code == 409
    assert used(customer) == 2
    assert not UsageConsumption.objects.exists()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"idempotency_key": None}, "idempotency_key"),
        ({"requested_usage": 0}, "requested_usage"),
        ({"requested_usage": None}, "requested_usage"),
        ({"requested_usage": 10**13}, "requested_usage"),
        ({"consume": "yes"}, "consume"),
    ],
)
def test_bad_consume_input_is_400_and_records_nothing(api, customer, extra, field):
    body = {
        "customer_id": customer.customer_id,
        "feature": "api_calls",
        "requested_usage": 1,
        "consume": True,
        "idempotency_key": "bad",
        **extra,
    }
    body = {k: v for k, v in body.items() if v is not None}
    response = post(api, CHECK, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["fields"], error
    if field in ("idempotency_key", "requested_usage") and extra.get(field, 1) in (None, 0):
        assert error["fields"][field][0]["code"] == "required_for_consume"
    assert not UsageEvent.objects.exists() and not UsageConsumption.objects.exists()


def test_consuming_an_on_off_feature_is_400(api, customer):
    from tests.licensing.test_access_api import on_plan

    on_plan(customer, "pro")
    response = consume(api, customer.customer_id, feature="sso")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["feature"][0]["code"] == "feature_not_metered"
    refused = consume(api, customer.customer_id, feature="priority_support")
    assert refused.json()["reason"] == "feature_not_in_plan"


def test_plain_check_access_stays_read_only(api, customer):
    body = {"customer_id": customer.customer_id, "feature": "api_calls", "requested_usage": 9}
    assert post(api, CHECK, body).status_code == 200
    assert post(api, CHECK, {**body, "consume": False, "idempotency_key": "x"}).status_code == 200
    assert used(customer) == 0
    assert not UsageEvent.objects.exists()


def test_consume_takes_the_same_queries_whatever_was_consumed_before(api, customer):
    consume(api, customer.customer_id)  # the catalog's limits, read once
    counts = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            assert consume(api, customer.customer_id).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2]
    # key, customer and plan, total; then in one transaction (begin/commit on SQLite are
    # not captured): claim, its savepoint pair, the key's usage report check, the total's
    # upsert, the conditional update, the event and its savepoint pair, the total, the
    # claim, the spend caps.
    assert counts[0] <= 17, counts


@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_consuming_at_once_end_exactly_at_the_limit(service_key):
    """Must show 2: whatever the interleaving, usage ends exactly at the limit."""
    from licensing.catalog import catalog_read
    from licensing.services import catalog_load

    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (CI runs it there)")
    catalog_load(catalog=catalog_read())
    MembershipFactory()  # another customer, untouched
    threads_per_round, rounds = 16, 30
    for round_number in range(rounds):
        customer = MembershipFactory().customer
        room = 3 + round_number % 12  # 3 to 14 units left, fewer than the callers
        api = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
        filler = usage(customer.customer_id, quantity=TRIAL_LIMIT - room)
        assert post(api, USAGE, filler).status_code == 201
        barrier = threading.Barrier(threads_per_round)
        answers = []

        def send(
            index,
            customer_id=customer.customer_id,
            barrier=barrier,
            answers=answers,
            prefix=f"r{round_number}",
        ):
            client = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
            try:
                barrier.wait()
                response = consume(client, customer_id, key=f"{prefix}-{index}")
                answers.append((response.status_code, response.json()["reason"]))
            finally:
                connection.close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(threads_per_round)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        granted = [a for a in answers if a == (200, "ok")]
        refused = [a for a in answers if a == (403, "usage_limit_exceeded")]
        assert (len(granted), len(refused)) == (room, threads_per_round - room), answers
        assert used(customer) == TRIAL_LIMIT, f"round {round_number}"
        assert UsageEvent.objects.filter(customer=customer).count() == 1 + room
        assert UsageConsumption.objects.filter(customer=customer, granted=True).count() == room
