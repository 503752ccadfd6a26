"""check-access remembers each customer's standing beside Customer.standing_version, which
the database's triggers give anew on every change to what the standing is read from
(licensing/standing_versions.py): each change moves it, nothing else does, no writer can
bring an old value back, and the next answer after each change is the new one, in one
query for a remembered customer."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Customer
from licensing import entitlements
from licensing.models import CustomerPlan, Plan, SpendCap
from licensing.services import usage_record
from licensing.spend import spend_cap_set

from .api_calls import CHECK, FrontDoor, on_plan

NOW = datetime(2027, 5, 14, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    """Every test at one moment: the times written below are NOW and spans from it."""
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def customer(membership, catalog):
    return membership.customer


def version(customer) -> int:
    return Customer.objects.values_list("standing_version", flat=True).get(pk=customer.pk)


def moves(customer, change) -> bool:
    before = version(customer)
    change()
    return version(customer) != before


def test_every_change_to_the_standing_gives_a_new_version(customer):
    c = Customer.objects.filter(pk=customer.pk)
    assert moves(customer, lambda: c.update(trial_ends_at=NOW + timedelta(days=30)))
    assert moves(customer, lambda: c.update(suspended_at=NOW))
    assert moves(customer, lambda: c.update(suspended_at=None))
    assert moves(customer, lambda: on_plan(customer))  # the plan row is inserted
    plan = CustomerPlan.objects.filter(customer=customer)
    assert moves(customer, lambda: plan.update(status=CustomerPlan.Status.PAST_DUE))
    assert moves(customer, lambda: plan.update(past_due_since=NOW))
    assert moves(customer, lambda: plan.update(current_period_end=NOW))
    assert moves(customer, lambda: plan.update(plan=Plan.objects.get(code="starter")))
    assert moves(customer, lambda: Plan.objects.filter(code="starter").update(code="starter2"))
    assert moves(customer, lambda: spend_cap_set(
        customer=customer, feature=None, amount=500, thresholds=[100], mode="stop"
    ))  # fmt: skip
    caps = SpendCap.objects.filter(customer=customer)
    assert moves(customer, lambda: caps.update(mode="alert"))
    assert moves(customer, lambda: caps.delete())
    assert moves(customer, lambda: plan.delete())


def test_what_the_standing_is_not_read_from_leaves_the_version_alone(customer):
    on_plan(customer)
    c = Customer.objects.filter(pk=customer.pk)
    assert not moves(customer, lambda: c.update(name="Renamed Ltd"))
    plan = CustomerPlan.objects.filter(customer=customer)
    assert not moves(customer, lambda: plan.update(cancel_at_period_end=True))
    assert not moves(customer, lambda: plan.update(status=CustomerPlan.Status.ACTIVE))  # same
    assert not moves(customer, lambda: usage_record(
        customer=customer, feature="api_calls", quantity=3, idempotency_key="v1"
    ))  # fmt: skip


def test_a_stale_instance_saved_over_the_row_cannot_bring_its_version_back(customer):
    stale = Customer.objects.get(pk=customer.pk)
    Customer.objects.filter(pk=customer.pk).update(suspended_at=NOW)
    moved = version(customer)
    stale.name = "Saved from an old copy"
    stale.save()  # writes its old standing_version and suspended_at back
    assert version(customer) not in (stale.standing_version, moved)


@pytest.mark.django_db(transaction=True)
def test_a_version_seen_inside_a_rolled_back_transaction_never_comes_back(membership, catalog):
    customer = membership.customer
    seen = set()
    for _attempt in range(3):
        with pytest.raises(RuntimeError), transaction.atomic():
            Customer.objects.filter(pk=customer.pk).update(suspended_at=NOW)
            seen.add(version(customer))
            raise RuntimeError("rolled back")
    Customer.objects.filter(pk=customer.pk).update(suspended_at=NOW)
    assert len(seen) == 3 and version(customer) not in seen


@pytest.fixture
def ask(service_key):
    """check-access through the WSGI application, with the standings forgotten first."""
    client = FrontDoor(HTTP_AUTHORIZATION=f"Bearer {service_key}")

    def asked(customer, feature="api_calls", **extra):
        body = {"customer_id": customer.customer_id, "feature": feature, **extra}
        return client.post(CHECK, body, content_type="application/json")

    entitlements.standing_cache_clear()
    yield asked
    entitlements.standing_cache_clear()


def test_a_remembered_customer_costs_one_query_and_no_join(customer, ask):
    on_plan(customer)
    usage_record(customer=customer, feature="api_calls", quantity=4, idempotency_key="q1")
    with CaptureQueriesContext(connection) as first:
        assert ask(customer).json()["usage"]["used"] == 4
    assert customer.customer_id in entitlements._standings
    for feature, used in (("api_calls", 4), ("sso", None)):
        with CaptureQueriesContext(connection) as queries:
            answer = ask(customer, feature).json()
        assert answer["has_access"] and (answer["usage"] or {}).get("used") == used
        assert len(queries) == 1, [q["sql"] for q in queries]
        assert "JOIN" not in queries[0]["sql"] and "standing_version" in queries[0]["sql"]
    assert "JOIN" in first[-1]["sql"]  # the first read the whole standing


def test_a_moved_version_costs_one_more_query_and_the_answer_is_the_new_one(customer, ask):
    on_plan(customer)
    assert ask(customer).status_code == 200
    Customer.objects.filter(pk=customer.pk).update(suspended_at=NOW)
    with CaptureQueriesContext(connection) as queries:
        answer = ask(customer).json()
    assert answer["reason"] == "account_suspended"
    assert len(queries) == 2


def test_each_change_shows_in_the_next_answer_of_a_remembered_customer(customer, ask):
    def reason(feature="api_calls", **extra):
        answered = ask(customer, feature, **extra).json()
        assert customer.customer_id in entitlements._standings  # remembered again
        return answered["reason"]

    c = Customer.objects.filter(pk=customer.pk)
    c.update(trial_ends_at=NOW - timedelta(seconds=1))
    assert reason() == "trial_expired"
    c.update(trial_ends_at=NOW + timedelta(days=3))  # support extends the trial
    assert reason() == "ok"
    on_plan(customer, "starter")
    assert reason("sso") == "feature_not_in_plan"
    plan = CustomerPlan.objects.filter(customer=customer)
    plan.update(plan=Plan.objects.get(code="pro"))  # an upgrade, written without signals
    assert reason("sso") == "ok"
    plan.update(status=CustomerPlan.Status.PAST_DUE, past_due_since=NOW - timedelta(30))
    assert reason("sso") == "past_due"
    plan.update(status=CustomerPlan.Status.ACTIVE, past_due_since=None)
    assert reason("sso") == "ok"
    c.update(suspended_at=NOW)
    assert reason("sso") == "account_suspended"
    c.update(suspended_at=None)
    spend_cap_set(customer=customer, feature=None, amount=1, thresholds=[100], mode="stop")
    assert reason(requested_usage=1_000) == "spend_cap_reached"
    SpendCap.objects.filter(customer=customer).delete()
    assert reason(requested_usage=1_000) == "ok"
    plan.delete()
    c.update(trial_ends_at=NOW - timedelta(days=1))
    assert reason() == "trial_expired"
    c.delete()
    assert ask(customer).json()["reason"] == "customer_not_found"
    assert customer.customer_id not in entitlements._standings


def test_usage_is_exact_for_a_remembered_customer(customer, ask):
    on_plan(customer)
    for n in range(1, 4):
        usage_record(customer=customer, feature="api_calls", quantity=10, idempotency_key=f"e{n}")
        assert ask(customer).json()["usage"]["used"] == 10 * n


def test_the_cache_holds_at_most_its_size(customer, ask, other_membership, monkeypatch):
    monkeypatch.setattr(entitlements, "STANDING_CACHE_SIZE", 1)
    ask(customer)
    ask(other_membership.customer)
    assert list(entitlements._standings) == [other_membership.customer.customer_id]


@pytest.mark.django_db(transaction=True)
def test_the_prepared_statements_outlive_a_rollback_and_are_prepared_again_if_dropped(
    membership, catalog, ask
):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (CI runs it there)")
    customer = membership.customer
    on_plan(customer)
    assert ask(customer).status_code == 200 and ask(customer).status_code == 200
    with pytest.raises(RuntimeError), transaction.atomic():
        Customer.objects.filter(pk=customer.pk).update(name="Rolled back")
        raise RuntimeError("rolled back")
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'bp_%%'")
        assert cursor.fetchall()  # psycopg deallocates nothing after the rollback
        cursor.execute("DEALLOCATE ALL")  # as a pooler's DISCARD ALL would
    answer = ask(customer)
    assert answer.status_code == 200 and answer.json()["reason"] == "ok"


def test_a_total_in_a_period_the_first_query_did_not_read_is_read_exactly(customer, ask):
    # The paid period begins in an hour (its renewal was projected early): use now counts
    # in the period before it, which the query for a customer not yet remembered does not
    # read, so it costs a second query; remembered, the one query reads that period.
    plan = on_plan(customer)
    now = NOW
    plan.current_period_start, plan.current_period_end = (
        now + timedelta(hours=1),
        now + timedelta(days=31),
    )
    plan.save()
    usage_record(customer=customer, feature="api_calls", quantity=9, idempotency_key="early")
    with CaptureQueriesContext(connection) as first:
        assert ask(customer).json()["usage"]["used"] == 9
    with CaptureQueriesContext(connection) as remembered:
        assert ask(customer).json()["usage"]["used"] == 9
    totals = [[q for q in run if "licensing_usagetotal" in q["sql"]] for run in (first, remembered)]
    assert [len(t) for t in totals] == [2, 1]  # the first also looked up the key
    assert len(remembered) == 1


@pytest.mark.django_db(transaction=True)
def test_without_prepared_statements_the_answers_are_the_same(membership, catalog, ask, settings):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (CI runs it there)")
    assert connection.settings_dict["OPTIONS"]["prepare_threshold"] is None  # psycopg's off
    customer = membership.customer
    on_plan(customer)
    usage_record(customer=customer, feature="api_calls", quantity=5, idempotency_key="np")
    settings.DATABASE_PREPARED_STATEMENTS = False
    connection.close()  # a new connection, with nothing prepared on it
    entitlements.standing_cache_clear()
    answers = [ask(customer).json()["usage"]["used"] for _ in range(2)]  # unknown, remembered
    assert answers == [5, 5] and customer.customer_id in entitlements._standings
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        assert cursor.fetchall() == []
    settings.DATABASE_PREPARED_STATEMENTS = True
    assert ask(customer).json()["usage"]["used"] == 5
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'bp_%%'")
        assert cursor.fetchone() == (1,)  # the remembered customer's query
