"""Usage intake takes nothing that could hurt: strict JSON types, timestamps only where a
period someone sees counts them, and an idempotency key names one report only."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from licensing.models import CustomerPlan, Plan, UsageEvent, UsageTotal
from tests.accounts.factories import MembershipFactory
from tests.licensing.api_calls import CHECK, USAGE, post, usage


def used(api, customer_id, feature="api_calls") -> int:
    body = post(api, CHECK, {"customer_id": customer_id, "feature": feature}).json()
    return body["usage"]["used"]


def error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


def field_codes(response) -> dict:
    """{field: first code} of a 400's fields (a batch's keyed by item)."""
    fields = error(response, 400)["fields"]
    return {
        name: value[0]["code"] if isinstance(value, list) else field_codes_of(value)
        for name, value in fields.items()
    }


def field_codes_of(fields: dict) -> dict:
    return {name: value[0]["code"] for name, value in fields.items()}


@pytest.fixture(autouse=True)
def _still_clock():
    """The clock stands still in each test (those that travel set their own moment), so a
    suite run across a month's end (TEST_CLOCK_START) cannot split a test between periods."""
    with time_machine.travel(datetime.now(UTC), tick=False):
        yield


@pytest.fixture
def customer(membership, other_membership, catalog):
    return membership.customer


def new_customer(**fields):
    """A customer made at the (travelled) current time, on the free trial."""
    return MembershipFactory(
        **{f"customer__{name}": value for name, value in fields.items()}
    ).customer


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- Strict JSON types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("quantity", "5", "invalid"),
        ("quantity", True, "invalid"),
        ("quantity", 5.0, "invalid"),
        ("quantity", 2.5, "invalid"),
        ("quantity", [5], "invalid"),
        ("quantity", None, "null"),
        ("quantity", 10**12 + 1, "max_value"),
        ("idempotency_key", 5, "invalid"),
        ("idempotency_key", True, "invalid"),
        ("idempotency_key", ["k"], "invalid"),
        ("idempotency_key", None, "null"),
        ("idempotency_key", "", "blank"),
        ("idempotency_key", "k" * 256, "max_length"),
        ("idempotency_key", "k\x00", "null_characters_not_allowed"),
        ("customer_id", 5, "invalid"),
        ("customer_id", {"id": "cust_"}, "invalid"),
        ("feature", 5, "invalid"),
        ("feature", ["api_calls"], "invalid"),
        ("timestamp", 1_796_000_000, "invalid"),
        ("timestamp", True, "invalid"),
        ("timestamp", "yesterday", "invalid"),
    ],
)
def test_usage_fields_take_their_own_json_type_only(api, customer, field, value, code):
    body = {**usage(customer.customer_id), field: value}
    assert field_codes(post(api, USAGE, body)) == {field: code}
    batch = [usage(customer.customer_id), body]
    assert field_codes(post(api, USAGE, batch)) == {"1": {field: code}}
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "codes"),
    [
        ("5", {"non_field_errors": "invalid"}),
        ('"usage"', {"non_field_errors": "invalid"}),
        ("true", {"non_field_errors": "invalid"}),
        ("null", {"non_field_errors": "null"}),
        ("[5]", {"0": {"non_field_errors": "invalid"}}),
        ("[null]", {"0": "null"}),
    ],
)
def test_a_usage_body_must_be_an_object_or_a_list_of_objects(api, customer, body, codes):
    assert field_codes(post(api, USAGE, body)) == codes


def test_an_empty_body_names_every_missing_field(api, customer):
    assert field_codes(post(api, USAGE, "")) == {
        "customer_id": "required",
        "feature": "required",
        "quantity": "required",
        "idempotency_key": "required",
    }


def test_a_batch_holds_at_least_one_report(api, customer):
    assert error(post(api, USAGE, "[]"), 400)["code"] == "invalid_batch"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("requested_usage", "5"),
        ("requested_usage", True),
        ("requested_usage", 1.0),
        ("feature", 5),
        ("customer_id", 5),
    ],
)
def test_check_access_fields_are_strict_too(api, customer, field, value):
    body = {"customer_id": customer.customer_id, "feature": "api_calls", field: value}
    assert field_codes(post(api, CHECK, body)) == {field: "invalid"}


# --- When a use may have happened -----------------------------------------------------------


def test_a_timestamp_may_be_as_old_as_the_start_of_the_previous_period(api, catalog):
    now = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        customer = new_customer().customer_id
        previous_start = datetime(2027, 2, 1, tzinfo=UTC)

        oldest = post(api, USAGE, usage(customer, quantity=2, timestamp=iso(previous_start)))
        assert oldest.status_code == 201
        assert oldest.json()["period_start"] == "2027-02-01T00:00:00Z"
        last_of_previous = datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC)
        late = post(api, USAGE, usage(customer, quantity=3, timestamp=iso(last_of_previous)))
        assert late.json()["period_start"] == "2027-02-01T00:00:00Z"

        too_old = post(
            api, USAGE, usage(customer, timestamp=iso(previous_start - timedelta(seconds=1)))
        )
        assert field_codes(too_old) == {"timestamp": "too_old"}
        assert (
            "2027-02-01T00:00:00Z" in too_old.json()["error"]["fields"]["timestamp"][0]["message"]
        )

        # Counted in February, not in the March that check-access and /me show.
        assert used(api, customer) == 0
        feb = UsageTotal.objects.get(customer_id=customer, period_start=previous_start)
        assert feb.used == 5


def test_a_timestamp_may_be_five_minutes_ahead_of_our_clock(api, catalog):
    now = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        customer = new_customer().customer_id
        ahead = post(api, USAGE, usage(customer, timestamp=iso(now + timedelta(minutes=5))))
        assert ahead.status_code == 201
        too_far = now + timedelta(minutes=5, seconds=1)
        assert field_codes(post(api, USAGE, usage(customer, timestamp=iso(too_far)))) == {
            "timestamp": "in_the_future"
        }
        assert used(api, customer) == 1


@pytest.mark.parametrize(
    "timestamp",
    [
        "1970-01-01T00:00:00Z",
        "2100-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59.999999-01:00",
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00",
    ],
)
def test_timestamps_far_off_are_400_not_500(api, customer, timestamp):
    response = post(api, USAGE, usage(customer.customer_id, timestamp=timestamp))
    assert response.status_code == 400
    assert set(field_codes(response)) == {"timestamp"}
    assert not UsageEvent.objects.exists()
    assert not UsageTotal.objects.exists()


def test_at_the_turn_of_the_year_december_is_the_previous_period(api, catalog):
    now = datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        customer = new_customer().customer_id
        december = post(api, USAGE, usage(customer, timestamp="2026-12-01T00:00:00Z"))
        assert december.json()["period_start"] == "2026-12-01T00:00:00Z"
        november = post(api, USAGE, usage(customer, timestamp="2026-11-30T23:59:59Z"))
        assert field_codes(november) == {"timestamp": "too_old"}
        assert used(api, customer) == 0


def test_a_use_a_little_ahead_on_new_years_eve_counts_in_the_old_year(api, catalog):
    now = datetime(2026, 12, 31, 23, 58, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        customer = new_customer().customer_id
        response = post(api, USAGE, usage(customer, timestamp="2027-01-01T00:02:59Z"))
        assert response.status_code == 201
        assert response.json()["occurred_at"] == "2027-01-01T00:02:59Z"
        assert response.json()["period_start"] == "2026-12-01T00:00:00Z"
        assert used(api, customer) == 1


def test_on_a_paid_plan_the_previous_period_is_the_previous_billing_period(api, catalog):
    now = datetime(2027, 3, 20, 9, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        customer = new_customer()
        CustomerPlan.objects.create(
            customer=customer,
            plan=Plan.objects.get(code="starter"),
            status=CustomerPlan.Status.ACTIVE,
            current_period_start=datetime(2027, 3, 10, 8, 0, tzinfo=UTC),
            current_period_end=datetime(2027, 4, 10, 8, 0, tzinfo=UTC),
            subscription_id="sub_test",
        )
        customer_id = customer.customer_id
        first = post(api, USAGE, usage(customer_id, timestamp="2027-02-10T08:00:00Z"))
        assert first.status_code == 201
        assert first.json()["period_start"] == "2027-02-10T08:00:00Z"
        before = post(api, USAGE, usage(customer_id, timestamp="2027-02-10T07:59:59Z"))
        assert field_codes(before) == {"timestamp": "too_old"}
        current = post(api, USAGE, usage(customer_id, timestamp="2027-03-10T08:00:00Z"))
        assert current.json()["period_start"] == "2027-03-10T08:00:00Z"
        assert used(api, customer_id) == 1


def test_a_feature_that_never_resets_takes_uses_since_the_account_began(api, catalog):
    now = datetime(2027, 5, 4, 10, 0, tzinfo=UTC)
    with time_machine.travel(now - timedelta(days=40), tick=False):
        # A long trial: a customer with no plan at all has no features that never reset.
        customer = new_customer(trial_ends_at=now + timedelta(days=30)).customer_id
    with time_machine.travel(now, tick=False):
        since = post(api, USAGE, usage(customer, "projects", timestamp="2027-03-25T10:00:00Z"))
        assert since.status_code == 201
        before = post(api, USAGE, usage(customer, "projects", timestamp="2027-03-25T09:54:59Z"))
        assert field_codes(before) == {"timestamp": "too_old"}
        assert field_codes(
            post(api, USAGE, usage(customer, "projects", timestamp="1970-01-01T00:00:00Z"))
        ) == {"timestamp": "too_old"}
        assert UsageEvent.objects.filter(customer_id=customer).count() == 1


def test_one_bad_timestamp_in_a_batch_records_nothing(api, customer, other_membership):
    batch = [
        usage(customer.customer_id, quantity=4),
        usage(other_membership.customer.customer_id, timestamp="2100-01-01T00:00:00Z"),
    ]
    assert field_codes(post(api, USAGE, batch)) == {"1": {"timestamp": "in_the_future"}}
    assert not UsageEvent.objects.exists()
    assert used(api, customer.customer_id) == 0


# --- Idempotency keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": 8},
        {"feature": "projects"},
        {"timestamp": "2027-03-15T11:00:00Z"},
        {"customer_id": "other"},
    ],
)
def test_a_key_reused_for_another_report_is_409(api, catalog, change):
    now = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        customer, other = new_customer().customer_id, new_customer().customer_id
        first = usage(customer, quantity=7, key="k-1", timestamp="2027-03-15T10:00:00Z")
        assert post(api, USAGE, first).status_code == 201
        change = {k: other if v == "other" else v for k, v in change.items()}
        again = post(api, USAGE, {**first, **change})
        body = error(again, 409)
        assert body["code"] == "idempotency_key_reused"
        assert body["fields"]["idempotency_key"][0]["code"] == "idempotency_key_reused"
        assert "'k-1'" in body["message"]
        assert UsageEvent.objects.count() == 1
        assert used(api, customer) == 7
        assert used(api, other) == 0


def test_a_repeat_with_the_same_report_answers_the_first_record(api, catalog):
    now = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False) as clock:
        customer = new_customer().customer_id
        first = usage(customer, quantity=7, key="k-1", timestamp="2027-03-15T11:00:00+01:00")
        recorded = post(api, USAGE, first)
        assert recorded.status_code == 201
        # The same time written another way, and a repeat that names no time, are the same.
        same_instant = post(api, USAGE, {**first, "timestamp": "2027-03-15T10:00:00Z"})
        no_time = post(api, USAGE, {k: v for k, v in first.items() if k != "timestamp"})
        assert same_instant.status_code == no_time.status_code == 201
        assert same_instant.json() == no_time.json() == recorded.json()

        # Months later the first report is older than any period taken now: still its record.
        clock.move_to(now + timedelta(days=120))
        assert post(api, USAGE, first).json() == recorded.json()
        assert UsageEvent.objects.count() == 1


def test_a_repeat_naming_another_time_than_the_first_is_another_report(api, customer):
    first = usage(customer.customer_id, quantity=2, key="k-2")
    assert post(api, USAGE, first).status_code == 201
    assert post(api, USAGE, first).status_code == 201
    later = post(api, USAGE, {**first, "timestamp": "2000-01-01T00:00:00Z"})
    assert error(later, 409)["code"] == "idempotency_key_reused"


def test_duplicate_keys_inside_a_batch_are_400_and_record_nothing(api, customer, other_membership):
    other = other_membership.customer.customer_id
    batch = [
        usage(customer.customer_id, key="d-1"),
        usage(other, key="d-2"),
        usage(customer.customer_id, key="d-1"),  # even the same report twice
        usage(other, key="d-2", quantity=9),
    ]
    response = post(api, USAGE, batch)
    assert field_codes(response) == {
        "2": {"idempotency_key": "duplicate_in_batch"},
        "3": {"idempotency_key": "duplicate_in_batch"},
    }
    message = response.json()["error"]["fields"]["3"]["idempotency_key"][0]["message"]
    assert "Item 1" in message
    assert not UsageEvent.objects.exists()


def test_a_batch_reusing_an_earlier_key_for_another_report_records_nothing(
    api, customer, other_membership
):
    assert post(api, USAGE, usage(customer.customer_id, quantity=1, key="e-1")).status_code == 201
    batch = [
        usage(other_membership.customer.customer_id, key="e-2"),
        usage(customer.customer_id, quantity=5, key="e-1"),
    ]
    body = error(post(api, USAGE, batch), 409)
    assert body["code"] == "idempotency_key_reused"
    assert body["fields"]["1"]["idempotency_key"][0]["code"] == "idempotency_key_reused"
    assert list(UsageEvent.objects.values_list("idempotency_key", flat=True)) == ["e-1"]
    assert used(api, customer.customer_id) == 1
