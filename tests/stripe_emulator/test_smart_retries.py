"""Stripe's retries of a failed renewal payment (Smart Retries, or a custom schedule):
``next_payment_attempt``, an attempt each time a test clock passes it, ``invoice.payment_failed``
per attempt, and the account's final action after the last retry."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import InProcessHTTPClient, emulator_in_process
from stripe_emulator.__main__ import main
from stripe_emulator.app import SMART_RETRIES, retry_settings

from .conftest import API_KEY, InProcessHarness, advance_clock

DAY = 86400
START = 1_800_000_000


class RetryHarness(InProcessHarness):
    """An in-process emulator with the account's retry settings given."""

    def __init__(self, **retries: Any) -> None:
        self.delivered = []
        self.emulator = emulator_in_process(self._receive, **retries)
        self.http = InProcessHTTPClient(self.emulator)
        self.client = stripe.StripeClient(API_KEY, http_client=self.http)


class Renewal:
    """A monthly subscription on a test clock whose first renewal fails."""

    def __init__(self, harness: InProcessHarness, decline_code: str = "generic_decline") -> None:
        self.harness, self.api = harness, harness.client.v1
        harness.subscribe_webhooks()
        api = self.api
        self.clock = api.test_helpers.test_clocks.create({"frozen_time": START})
        self.customer = api.customers.create(
            {"email": "dunning@example.com", "test_clock": self.clock.id}
        )
        self.card = api.payment_methods.attach("pm_card_visa", {"customer": self.customer.id})
        api.customers.update(
            self.customer.id, {"invoice_settings": {"default_payment_method": self.card.id}}
        )
        price = api.prices.create(
            {"product_data": {"name": "Plan"}, "currency": "usd", "unit_amount": 4900,
             "recurring": {"interval": "month"}}
        )  # fmt: skip
        self.subscription = api.subscriptions.create(
            {"customer": self.customer.id, "items": [{"price": price.id}]}
        )
        harness.emulator.card_behavior_set(self.card.id, decline_code=decline_code)
        period_end = self.subscription["items"].data[0].current_period_end
        self.advance(
            period_end + 60
        )  # the renewal's draft; acknowledged, it finalizes an hour later
        self.advance(period_end + 2 * 3600)
        self.invoice = self.latest()
        self.failed_at = self.invoice.status_transitions.finalized_at

    def advance(self, to: int) -> None:
        advance_clock(self.api, self.clock.id, to)
        self.harness.settle()

    def latest(self) -> Any:
        return self.api.invoices.list({"subscription": self.subscription.id}).data[0]

    def status(self) -> str:
        return self.api.subscriptions.retrieve(self.subscription.id).status

    def failures(self) -> list[Any]:
        """The invoice as each invoice.payment_failed carried it."""
        return [
            event.data.object
            for event in self.harness.events()
            if event.type == "invoice.payment_failed" and event.data.object.id == self.invoice.id
        ]

    def charges(self) -> list[str]:
        return [c.status for c in self.api.charges.list({"customer": self.customer.id}).data]


def test_smart_retries_by_default_eight_tries_in_two_weeks_then_cancel(in_process) -> None:
    renewal = Renewal(in_process)
    # The first attempt is as before: open, past_due, invoice.payment_failed; and a retry due.
    invoice = renewal.invoice
    assert (invoice.billing_reason, invoice.status, invoice.attempt_count) == (
        "subscription_cycle",
        "open",
        1,
    )
    assert invoice.next_payment_attempt == renewal.failed_at + 2 * DAY
    assert renewal.status() == "past_due"
    [first] = renewal.failures()
    assert (first.attempt_count, first.next_payment_attempt) == (1, renewal.failed_at + 2 * DAY)

    renewal.advance(renewal.failed_at + 2 * DAY - 60)  # not yet
    assert renewal.latest().attempt_count == 1
    for retry in range(1, 8):
        renewal.advance(renewal.failed_at + 2 * DAY * retry + 60)
        assert renewal.latest().attempt_count == 1 + retry
    failures = renewal.failures()
    assert [f.attempt_count for f in failures] == list(range(1, 9))
    assert [f.next_payment_attempt for f in failures] == [
        renewal.failed_at + 2 * DAY * n for n in range(1, 8)
    ] + [None]
    assert renewal.charges() == ["failed"] * 8 + ["succeeded"]  # newest first
    # After the last retry: Stripe's default, the subscription canceled, the invoice left open.
    subscription = renewal.api.subscriptions.retrieve(renewal.subscription.id)
    assert (subscription.status, subscription.cancellation_details.reason) == (
        "canceled",
        "payment_failed",
    )
    last = renewal.latest()
    assert (last.status, last.next_payment_attempt) == ("open", None)
    types = [e.type for e in renewal.harness.events() if not e.type.startswith("test_helpers.")]
    assert types[-2:] == ["invoice.payment_failed", "customer.subscription.deleted"]
    renewal.advance(renewal.failed_at + 30 * DAY)
    assert renewal.latest().attempt_count == 8  # nothing more


def test_a_custom_schedule_then_unpaid_and_uncollectible() -> None:
    harness = RetryHarness(
        retry_schedule=(3, 5), retries_final_status="unpaid", retries_final_invoice="uncollectible"
    )
    renewal = Renewal(harness)
    assert renewal.invoice.next_payment_attempt == renewal.failed_at + 3 * DAY
    renewal.advance(renewal.failed_at + 3 * DAY)
    second = renewal.latest()
    assert (second.attempt_count, second.next_payment_attempt) == (2, renewal.failed_at + 8 * DAY)
    renewal.advance(renewal.failed_at + 8 * DAY)
    last = renewal.latest()
    assert (last.attempt_count, last.status, last.next_payment_attempt) == (
        3,
        "uncollectible",
        None,
    )
    assert renewal.status() == "unpaid"
    types = [e.type for e in harness.events() if not e.type.startswith("test_helpers.")]
    assert types[-3:] == [
        "invoice.payment_failed",
        "invoice.marked_uncollectible",
        "customer.subscription.updated",
    ]
    # Paying it later (the hosted page) revives the subscription.
    paid = harness.http.dispatch("POST", last.hosted_invoice_url, {}, "payment_method=pm_card_visa")
    assert paid.status == 200 and renewal.status() == "active"


def test_left_past_due_after_the_last_retry() -> None:
    renewal = Renewal(RetryHarness(retry_schedule=(1,), retries_final_status="past_due"))
    renewal.advance(renewal.failed_at + DAY)
    last = renewal.latest()
    assert (last.attempt_count, last.status, last.next_payment_attempt) == (2, "open", None)
    assert renewal.status() == "past_due"


def test_no_retries_applies_the_final_action_at_once() -> None:
    renewal = Renewal(RetryHarness(retry_schedule=()))
    assert renewal.invoice.next_payment_attempt is None
    assert renewal.status() == "canceled"


def test_a_retry_charges_the_default_payment_method_as_it_is_then(in_process) -> None:
    renewal = Renewal(in_process)
    api = renewal.api
    # A subscription's own default comes before the customer's: still the failing card.
    api.subscriptions.update(renewal.subscription.id, {"default_payment_method": renewal.card.id})
    mastercard = api.payment_methods.attach("pm_card_mastercard", {"customer": renewal.customer.id})
    api.customers.update(
        renewal.customer.id, {"invoice_settings": {"default_payment_method": mastercard.id}}
    )
    renewal.advance(renewal.failed_at + 2 * DAY)
    assert (renewal.latest().status, renewal.latest().attempt_count) == ("open", 2)
    api.subscriptions.update(renewal.subscription.id, {"default_payment_method": ""})
    renewal.advance(renewal.failed_at + 4 * DAY)
    paid = renewal.latest()
    assert (paid.status, paid.attempt_count, paid.next_payment_attempt) == ("paid", 3, None)
    [payment] = [
        p for p in api.invoice_payments.list({"invoice": paid.id}).data if p.status == "paid"
    ]
    assert (
        api.payment_intents.retrieve(payment.payment.payment_intent).payment_method == mastercard.id
    )
    assert renewal.status() == "active"
    renewal.advance(renewal.failed_at + 20 * DAY)
    assert renewal.charges() == ["succeeded", "failed", "failed", "succeeded"]


def test_a_payment_in_between_ends_the_schedule(in_process) -> None:
    renewal = Renewal(in_process)
    page = in_process.http.dispatch(
        "POST", renewal.invoice.hosted_invoice_url, {}, "payment_method=pm_card_visa"
    )
    assert page.status == 200
    paid = renewal.latest()
    assert (paid.status, paid.next_payment_attempt) == ("paid", None)
    renewal.advance(renewal.failed_at + 15 * DAY)
    # Only the failed renewal: after the first attempt, only automatic ones count (Stripe's
    # documentation of attempt_count).
    assert renewal.latest().attempt_count == 1
    assert renewal.status() == "active"
    assert len(renewal.failures()) == 1


def test_a_failed_manual_attempt_keeps_the_schedule(in_process) -> None:
    renewal = Renewal(in_process)
    with pytest.raises(stripe.CardError):
        renewal.api.invoices.pay(renewal.invoice.id)
    after = renewal.latest()
    # A manual attempt after the first moves neither the schedule nor attempt_count.
    assert (after.attempt_count, after.next_payment_attempt) == (1, renewal.failed_at + 2 * DAY)
    renewal.advance(renewal.failed_at + 2 * DAY)
    retried = renewal.latest()
    assert (retried.attempt_count, retried.next_payment_attempt) == (2, renewal.failed_at + 4 * DAY)


def test_a_hard_decline_is_not_retried(in_process) -> None:
    renewal = Renewal(in_process, decline_code="lost_card")
    assert renewal.invoice.next_payment_attempt is None
    renewal.advance(renewal.failed_at + 20 * DAY)
    assert renewal.latest().attempt_count == 1
    assert renewal.status() == "past_due"  # no retries, so no final action either


def test_a_canceled_subscription_is_not_retried(in_process) -> None:
    renewal = Renewal(in_process)
    renewal.api.subscriptions.cancel(renewal.subscription.id)
    renewal.advance(renewal.failed_at + 3 * DAY)
    left = renewal.latest()
    assert (left.attempt_count, left.next_payment_attempt) == (1, None)


def test_a_retry_needing_authentication_waits_for_the_customer(in_process) -> None:
    renewal = Renewal(in_process)
    in_process.emulator.card_behavior_set(renewal.card.id, requires_action=True)
    renewal.advance(renewal.failed_at + 2 * DAY)
    waiting = renewal.latest()
    assert (waiting.attempt_count, waiting.next_payment_attempt) == (2, None)
    assert "invoice.payment_action_required" in [e.type for e in in_process.events()]
    renewal.advance(renewal.failed_at + 20 * DAY)
    assert renewal.latest().attempt_count == 2 and renewal.status() == "past_due"


def test_one_off_invoices_and_first_payments_are_not_retried(in_process) -> None:
    api = in_process.client.v1
    buyer = api.customers.create({})
    card = api.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": buyer.id})
    api.customers.update(buyer.id, {"invoice_settings": {"default_payment_method": card.id}})
    draft = api.invoices.create({"customer": buyer.id})
    api.invoice_items.create(
        {"customer": buyer.id, "invoice": draft.id, "amount": 100, "currency": "usd"}
    )
    one_off = api.invoices.finalize_invoice(draft.id, {"auto_advance": True})
    assert (one_off.status, one_off.next_payment_attempt) == ("open", None)
    price = api.prices.create(
        {"product_data": {"name": "P"}, "currency": "usd", "unit_amount": 100,
         "recurring": {"interval": "month"}}
    )  # fmt: skip
    subscription = api.subscriptions.create({"customer": buyer.id, "items": [{"price": price.id}]})
    first = api.invoices.retrieve(subscription.latest_invoice)
    assert (subscription.status, first.next_payment_attempt) == ("incomplete", None)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"retry_schedule": (0,)}, "each above 0"),
        ({"retry_schedule": (30, 31)}, "60 in all"),
        ({"retries_final_status": "deleted"}, "retries_final_status must be one of"),
        ({"retries_final_invoice": "void"}, "retries_final_invoice must be one of"),
    ],
)
def test_bad_retry_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        emulator_in_process(**settings)


def test_the_defaults_and_the_command_line() -> None:
    assert retry_settings(SMART_RETRIES, "canceled", "open") == ((2.0,) * 7, "canceled", "open")
    assert emulator_in_process().retry_schedule == (2.0,) * 7
    with pytest.raises(SystemExit):
        main(["--retry-schedule", "3,x"])
    with pytest.raises(SystemExit):
        main(["--retry-schedule", "3,-1"])
    with pytest.raises(SystemExit):
        main(["--retries-final-status", "deleted"])
