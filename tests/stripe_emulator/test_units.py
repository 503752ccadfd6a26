"""Small pieces with dense logic: form decoding, billing calendar, in-process client wiring."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import stripe

from stripe_emulator import InProcessHTTPClient, emulator_in_process
from stripe_emulator.errors import StripeError
from stripe_emulator.forms import decode
from stripe_emulator.timeutil import add_interval

from .conftest import API_KEY


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("a=1&b[c]=2", {"a": "1", "b": {"c": "2"}}),
        (
            "items[0][price]=p&items[1][price]=q",
            {"items": {"0": {"price": "p"}, "1": {"price": "q"}}},
        ),
        ("expand[]=customer&expand[]=latest_invoice", {"expand": ["customer", "latest_invoice"]}),
        ("metadata=", {"metadata": ""}),
        ("metadata[note]=a%20b%26c", {"metadata": {"note": "a b&c"}}),
    ],
)
def test_form_decoding(encoded: str, decoded: dict[str, object]) -> None:
    assert decode(encoded) == decoded


@pytest.mark.parametrize("encoded", ["a=1&a[b]=2", "a[b]=2&a=1", "a[]=1&a[b]=2", "[x]=1"])
def test_conflicting_form_keys_are_rejected(encoded: str) -> None:
    with pytest.raises(StripeError) as error:
        decode(encoded)
    assert error.value.status == 400


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


def test_monthly_periods_keep_the_anchor_day() -> None:
    jan31 = int(datetime(2027, 1, 31, 9, tzinfo=UTC).timestamp())
    feb = add_interval(jan31, "month", 1, anchor_day=31)
    assert (_day(feb), _day(add_interval(feb, "month", 1, anchor_day=31))) == (
        "2027-02-28",
        "2027-03-31",
    )
    assert _day(add_interval(jan31, "year", 1)) == "2028-01-31"
    assert _day(add_interval(jan31, "week", 2)) == "2027-02-14"
    assert _day(add_interval(jan31, "month", 3)) == "2027-04-30"


def test_global_default_http_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process client also works through stripe-python's module-level API."""
    monkeypatch.setattr(stripe, "api_key", API_KEY)
    monkeypatch.setattr(stripe, "default_http_client", InProcessHTTPClient(emulator_in_process()))
    customer = stripe.Customer.create(email="global@example.com")
    assert stripe.Customer.retrieve(customer.id).email == "global@example.com"


def test_webhooks_can_wait_for_an_explicit_flush() -> None:
    received: list[bytes] = []
    emulator = emulator_in_process(lambda body, headers: received.append(body))
    client = stripe.StripeClient(
        API_KEY, http_client=InProcessHTTPClient(emulator, deliver_webhooks=False)
    )
    client.v1.webhook_endpoints.create({"url": "http://127.0.0.1/hook", "enabled_events": ["*"]})
    client.v1.customers.create({})
    assert received == []
    assert emulator.webhooks.flush() == 1
    assert len(received) == 1
