"""``payment_behavior`` on a subscription update, as Stripe documents it: pending updates
(``pending_if_incomplete``) held until their invoice is paid, declined with a 402, expiring
23 hours later; ``error_if_incomplete`` and ``default_incomplete``; and previews whose
totals meet the customer's balance."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from .conftest import InProcessHarness, advance_clock

START = 1_800_000_000
HOUR = 3600


@pytest.fixture
def api(in_process: InProcessHarness) -> Any:
    return in_process.client.v1


def _prices(api: Any) -> tuple[Any, Any]:
    product = api.products.create({"name": "Plan"})
    return tuple(
        api.prices.create(
            {
                "product": product.id,
                "unit_amount": amount,
                "currency": "eur",
                "recurring": {"interval": "month"},
            }
        )
        for amount in (1000, 3000)
    )


def _subscribed(api: Any) -> tuple[Any, Any, Any, Any, Any]:
    """A customer on the 10.00 price, half-way through the period, paying with a visa."""
    clock = api.test_helpers.test_clocks.create({"frozen_time": START})
    customer = api.customers.create({"email": "pending@example.com", "test_clock": clock.id})
    card = api.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    api.customers.update(customer.id, {"invoice_settings": {"default_payment_method": card.id}})
    low, high = _prices(api)
    subscription = api.subscriptions.create({"customer": customer.id, "items": [{"price": low.id}]})
    item = subscription["items"].data[0]
    advance_clock(api, clock.id, (item.current_period_start + item.current_period_end) // 2)
    return customer, clock, subscription, low, high


def _declining(api: Any, customer: Any) -> Any:
    """The customer's default card from now on attaches fine and declines every charge."""
    card = api.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer.id})
    api.customers.update(customer.id, {"invoice_settings": {"default_payment_method": card.id}})
    return card


def _upgrade(api: Any, subscription: Any, price: Any, **extra: Any) -> Any:
    return api.subscriptions.update(
        subscription.id,
        {
            "items": [{"id": subscription["items"].data[0].id, "price": price.id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
            **extra,
        },
    )


def _price_of(api: Any, subscription_id: str) -> str:
    return api.subscriptions.retrieve(subscription_id)["items"].data[0].price.id


def _event_types(in_process: InProcessHarness) -> list[str]:
    return [e.type for e in reversed(in_process.client.v1.events.list({"limit": 100}).data)]


def test_a_pending_update_that_is_paid_applies_at_once(api: Any) -> None:
    _customer, _clock, subscription, _low, high = _subscribed(api)

    updated = _upgrade(api, subscription, high)

    assert updated.pending_update is None
    assert updated["items"].data[0].price.id == high.id
    invoice = api.invoices.retrieve(updated.latest_invoice)
    assert (invoice.status, invoice.amount_paid) == ("paid", 1000)  # half of 30.00 - 10.00


def test_a_declined_pending_update_answers_402_and_changes_nothing_until_paid(
    api: Any, in_process: InProcessHarness
) -> None:
    customer, _clock, subscription, low, high = _subscribed(api)
    _declining(api, customer)

    with pytest.raises(stripe.CardError) as declined:
        _upgrade(api, subscription, high)

    assert declined.value.http_status == 402
    assert declined.value.code == "card_declined"
    held = api.subscriptions.retrieve(subscription.id)
    assert (held.status, held["items"].data[0].price.id) == ("active", low.id)
    assert held.pending_update.expires_at == _now(api, held) + 23 * HOUR
    assert [i.price.id for i in held.pending_update.subscription_items] == [high.id]
    invoice = api.invoices.retrieve(held.latest_invoice)
    assert (invoice.status, invoice.billing_reason) == ("open", "subscription_update")

    # Paid with another card: the update applies then, once.
    visa = api.payment_methods.attach("pm_card_mastercard", {"customer": customer.id})
    paid = api.invoices.pay(invoice.id, {"payment_method": visa.id})
    assert paid.status == "paid"
    applied = api.subscriptions.retrieve(subscription.id)
    assert (applied.pending_update, _price_of(api, subscription.id)) == (None, high.id)
    assert applied.status == "active"
    types = _event_types(in_process)
    assert types.count("customer.subscription.pending_update_applied") == 1
    assert "customer.subscription.pending_update_expired" not in types


def _now(api: Any, subscription: Any) -> int:
    return api.test_helpers.test_clocks.retrieve(subscription.test_clock).frozen_time


def test_a_pending_update_expires_23_hours_later_and_its_invoice_is_voided(
    api: Any, in_process: InProcessHarness
) -> None:
    customer, clock, subscription, low, high = _subscribed(api)
    _declining(api, customer)
    made_at = _now(api, subscription)
    with pytest.raises(stripe.CardError):
        _upgrade(api, subscription, high)
    held = api.subscriptions.retrieve(subscription.id)
    assert held.pending_update.expires_at == made_at + 23 * HOUR

    advance_clock(api, clock.id, made_at + 22 * HOUR)
    assert api.subscriptions.retrieve(subscription.id).pending_update is not None
    advance_clock(api, clock.id, made_at + 24 * HOUR)

    expired = api.subscriptions.retrieve(subscription.id)
    assert (expired.pending_update, _price_of(api, subscription.id)) == (None, low.id)
    assert expired.status == "active"
    assert api.invoices.retrieve(held.latest_invoice).status == "void"
    types = _event_types(in_process)
    assert types.count("customer.subscription.pending_update_expired") == 1
    assert "invoice.voided" in types


def test_voiding_the_invoice_discards_the_pending_update(api: Any) -> None:
    customer, _clock, subscription, low, high = _subscribed(api)
    _declining(api, customer)
    with pytest.raises(stripe.CardError):
        _upgrade(api, subscription, high)
    invoice_id = api.subscriptions.retrieve(subscription.id).latest_invoice

    api.invoices.void_invoice(invoice_id)

    after = api.subscriptions.retrieve(subscription.id)
    assert (after.pending_update, _price_of(api, subscription.id)) == (None, low.id)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"metadata": {"a": "b"}}, "metadata"),
        ({"cancel_at_period_end": True}, "cancel_at_period_end"),
        ({"description": "x"}, "description"),
    ],
)
def test_pending_updates_accept_only_the_parameters_stripe_allows(
    api: Any, extra: dict, param: str
) -> None:
    _customer, _clock, subscription, low, high = _subscribed(api)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        _upgrade(api, subscription, high, **extra)

    assert refused.value.param == param
    assert "pending_if_incomplete" in str(refused.value)
    assert _price_of(api, subscription.id) == low.id
    assert api.subscriptions.retrieve(subscription.id).cancel_at_period_end is False


def test_pending_update_items_take_only_price_and_quantity(api: Any) -> None:
    _customer, _clock, subscription, low, high = _subscribed(api)
    item = subscription["items"].data[0]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        api.subscriptions.update(
            subscription.id,
            {
                "items": [{"id": item.id, "price": high.id, "metadata": {"a": "b"}}],
                "payment_behavior": "pending_if_incomplete",
                "proration_behavior": "always_invoice",
            },
        )
    assert refused.value.param == "items[0][metadata]"
    assert _price_of(api, subscription.id) == low.id


def test_error_if_incomplete_declines_with_402_and_makes_no_invoice(api: Any) -> None:
    customer, _clock, subscription, low, high = _subscribed(api)
    _declining(api, customer)
    invoices_before = len(api.invoices.list({"customer": customer.id}).data)

    with pytest.raises(stripe.CardError) as declined:
        _upgrade(api, subscription, high, payment_behavior="error_if_incomplete")

    assert declined.value.http_status == 402
    after = api.subscriptions.retrieve(subscription.id)
    assert (after.status, after.pending_update, _price_of(api, subscription.id)) == (
        "active",
        None,
        low.id,
    )
    assert len(api.invoices.list({"customer": customer.id}).data) == invoices_before


def test_default_incomplete_applies_and_leaves_the_invoice_to_be_paid(api: Any) -> None:
    _customer, _clock, subscription, _low, high = _subscribed(api)

    updated = _upgrade(api, subscription, high, payment_behavior="default_incomplete")

    assert updated.status == "past_due"
    assert updated["items"].data[0].price.id == high.id
    invoice = api.invoices.retrieve(updated.latest_invoice)
    assert (invoice.status, invoice.attempted, invoice.amount_due) == ("open", False, 1000)


def test_allow_incomplete_stays_the_default_a_decline_applies_and_is_past_due(api: Any) -> None:
    customer, _clock, subscription, _low, high = _subscribed(api)
    _declining(api, customer)
    updated = api.subscriptions.update(
        subscription.id,
        {
            "items": [{"id": subscription["items"].data[0].id, "price": high.id}],
            "proration_behavior": "always_invoice",
        },
    )
    assert (updated.status, updated["items"].data[0].price.id) == ("past_due", high.id)


def test_the_preview_of_an_immediate_invoice_meets_the_customers_credit(api: Any) -> None:
    """A downgrade leaves a credit; the preview of the upgrade after it says what will be
    charged (``amount_due``) as the paid invoice then shows it."""
    customer, _clock, subscription, low, high = _subscribed(api)
    item = subscription["items"].data[0]
    api.subscriptions.update(
        subscription.id,
        {"items": [{"id": item.id, "price": high.id}], "proration_behavior": "always_invoice"},
    )
    api.subscriptions.update(
        subscription.id,
        {"items": [{"id": item.id, "price": low.id}], "proration_behavior": "always_invoice"},
    )
    balance = api.customers.retrieve(customer.id).balance
    assert balance == -1000  # the downgrade's credit

    preview = api.invoices.create_preview(
        {
            "customer": customer.id,
            "subscription": subscription.id,
            "subscription_details": {
                "items": [{"id": item.id, "price": high.id}],
                "proration_behavior": "always_invoice",
            },
        }
    )
    assert sorted(line.amount for line in preview.lines.data) == [-500, 1500]
    assert (preview.total, preview.starting_balance) == (1000, -1000)
    assert (preview.amount_due, preview.ending_balance) == (0, 0)

    updated = _upgrade(api, subscription, high)
    invoice = api.invoices.retrieve(updated.latest_invoice)
    assert (invoice.status, invoice.amount_paid) == ("paid", preview.amount_due)
    assert api.customers.retrieve(customer.id).balance == preview.ending_balance


def _needs_authentication(api: Any, customer: Any) -> Any:
    card = api.payment_methods.attach("pm_card_authenticationRequired", {"customer": customer.id})
    api.customers.update(customer.id, {"invoice_settings": {"default_payment_method": card.id}})
    return card


def test_a_pending_update_needing_authentication_answers_200_and_applies_once_confirmed(
    api: Any, in_process: InProcessHarness
) -> None:
    customer, _clock, subscription, low, high = _subscribed(api)
    _needs_authentication(api, customer)

    held = _upgrade(api, subscription, high)

    assert held.pending_update is not None
    assert (held.status, held["items"].data[0].price.id) == ("active", low.id)
    invoice = api.invoices.retrieve(held.latest_invoice)
    assert invoice.status == "open"
    assert "invoice.payment_action_required" in _event_types(in_process)

    answer = in_process.http.dispatch(
        "POST", invoice.hosted_invoice_url, {}, "authenticate=complete"
    )
    assert answer.status == 200
    applied = api.subscriptions.retrieve(subscription.id)
    assert (applied.pending_update, _price_of(api, subscription.id)) == (None, high.id)
    assert api.invoices.retrieve(invoice.id).status == "paid"


def test_error_if_incomplete_refuses_a_payment_needing_authentication(api: Any) -> None:
    customer, _clock, subscription, low, high = _subscribed(api)
    _needs_authentication(api, customer)

    with pytest.raises(stripe.StripeError) as refused:
        _upgrade(api, subscription, high, payment_behavior="error_if_incomplete")

    assert refused.value.http_status == 402
    assert refused.value.code == "invoice_payment_intent_requires_action"
    assert _price_of(api, subscription.id) == low.id
    assert api.subscriptions.retrieve(subscription.id).pending_update is None
