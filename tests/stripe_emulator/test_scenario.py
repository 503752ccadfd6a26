"""Must-show 1: the customer journey, run over HTTP and in-process with stripe-python.

customer → setup Checkout on the hosted page → default card → trial → renewal paid →
declining card → renewal fails (402, invoice.payment_failed) → paid with another card →
cancel at period end → subscription deleted; every event verified as a receiver would.
Each renewal is a draft until an hour after the endpoint acknowledged ``invoice.created``.
"""

from __future__ import annotations

import pytest
import stripe

from .conftest import Harness, advance_clock

DAY = 86400
START = 1_800_000_000


def test_customer_journey(harness: Harness) -> None:
    client = harness.client
    harness.subscribe_webhooks()
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": START, "name": "journey"})
    customer = client.v1.customers.create(
        {
            "email": "ada@example.com",
            "metadata": {"customer_id": "cust_journey"},
            "test_clock": clock.id,
        }
    )
    product = client.v1.products.create({"name": "Pro"})
    price = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "usd",
            "unit_amount": 2000,
            "recurring": {"interval": "month"},
            "lookup_key": "pro",
        }
    )

    session = client.v1.checkout.sessions.create(
        {
            "mode": "setup",
            "customer": customer.id,
            "currency": "usd",
            "success_url": "http://127.0.0.1:8000/billing/cards/done?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://127.0.0.1:8000/billing/cards",
        }
    )
    status, location = harness.submit_checkout(session.url, "pm_card_visa")
    assert (status, location) == (
        303,
        f"http://127.0.0.1:8000/billing/cards/done?session={session.id}",
    )
    session = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["setup_intent"]})
    assert session.status == "complete"
    assert session.setup_intent.status == "succeeded"
    card = session.setup_intent.payment_method
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": card}})

    subscription = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": price.id}],
            "trial_period_days": 14,
            "metadata": {"plan": "pro"},
        }
    )
    assert subscription.status == "trialing"
    trial_end = subscription.trial_end
    assert trial_end == START + 14 * DAY

    # The trial's end drafts the renewal; it finalizes an hour after the endpoint has
    # acknowledged invoice.created (the receiver answered 200 once the clock was ready).
    harness.advance(clock.id, trial_end + 60)
    subscription = client.v1.subscriptions.retrieve(subscription.id, {"expand": ["latest_invoice"]})
    draft = subscription.latest_invoice
    assert (draft.status, draft.automatically_finalizes_at) == ("draft", trial_end + 60 + 3600)
    harness.advance(clock.id, trial_end + 2 * 3600)
    subscription = client.v1.subscriptions.retrieve(subscription.id, {"expand": ["latest_invoice"]})
    renewal = subscription.latest_invoice
    assert subscription.status == "active"
    assert (renewal.status, renewal.amount_paid, renewal.billing_reason) == (
        "paid",
        2000,
        "subscription_cycle",
    )
    assert renewal.parent.subscription_details.subscription == subscription.id
    period_end = subscription["items"].data[0].current_period_end

    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": customer.id}
    )
    client.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": failing.id}}
    )
    harness.advance(clock.id, period_end + 60)
    harness.advance(clock.id, period_end + 2 * 3600)
    subscription = client.v1.subscriptions.retrieve(subscription.id)
    failed = client.v1.invoices.retrieve(subscription.latest_invoice)
    assert (subscription.status, failed.status, failed.attempt_count) == ("past_due", "open", 1)

    with pytest.raises(stripe.CardError) as declined:
        client.v1.invoices.pay(failed.id)
    assert declined.value.http_status == 402
    assert declined.value.code == "card_declined"
    assert declined.value.error.decline_code == "generic_decline"

    other = client.v1.payment_methods.attach("pm_card_mastercard", {"customer": customer.id})
    paid = client.v1.invoices.pay(failed.id, {"payment_method": other.id})
    assert paid.status == "paid"
    assert client.v1.subscriptions.retrieve(subscription.id).status == "active"

    subscription = client.v1.subscriptions.update(subscription.id, {"cancel_at_period_end": True})
    assert subscription.cancel_at_period_end is True
    end = subscription["items"].data[0].current_period_end
    advance_clock(client.v1, clock.id, end + 60)
    subscription = client.v1.subscriptions.retrieve(subscription.id)
    assert (subscription.status, subscription.ended_at) == ("canceled", end)

    events = harness.events()
    types = [event.type for event in events]
    for expected in (
        "customer.created",
        "checkout.session.completed",
        "setup_intent.succeeded",
        "payment_method.attached",
        "customer.subscription.created",
        "customer.subscription.trial_will_end",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_failed",
        "charge.failed",
        "customer.subscription.deleted",
    ):
        assert expected in types, expected
    failed_events = [e for e in events if e.type == "invoice.payment_failed"]
    assert failed_events[0].data.object.id == failed.id
    assert failed_events[0].data.object.status == "open"
    assert types[-1] == "test_helpers.test_clock.ready"
    deleted = next(e for e in events if e.type == "customer.subscription.deleted")
    assert deleted.data.object.status == "canceled"
    # Every event the emulator recorded went out once, in the order it happened.
    recorded = [e.id for e in client.v1.events.list({"limit": 100}).auto_paging_iter()]
    assert [e.id for e in events] == list(reversed(recorded))


def test_checkout_subscription_mode_and_decline_on_page(harness: Harness) -> None:
    client = harness.client
    harness.subscribe_webhooks()
    price = client.v1.prices.create(
        {
            "product_data": {"name": "Team"},
            "currency": "eur",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
        }
    )
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer_email": "new@example.com",
            "line_items": [{"price": price.id, "quantity": 2}],
            "subscription_data": {"metadata": {"customer_id": "cust_x"}},
            "metadata": {"customer_id": "cust_x"},
            "success_url": "http://127.0.0.1:8000/ok/{CHECKOUT_SESSION_ID}",
            "cancel_url": "http://127.0.0.1:8000/cancel",
        }
    )
    status, page = harness.submit_checkout(session.url, "pm_card_chargeCustomerFail")
    assert status == 402
    assert "declined" in page and "Local Stripe emulator" in page
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"

    status, location = harness.submit_checkout(session.url, "pm_card_visa")
    assert (status, location) == (303, f"http://127.0.0.1:8000/ok/{session.id}")
    session = client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["subscription", "line_items"]}
    )
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session.subscription.status == "active"
    assert session.subscription.metadata.to_dict() == {"customer_id": "cust_x"}
    assert session.line_items.data[0].quantity == 2
    invoice = client.v1.invoices.retrieve(session.invoice, {"expand": ["payments"]})
    assert (invoice.status, invoice.amount_paid, invoice.currency) == ("paid", 1800, "eur")
    assert invoice.payments.data[0].payment.type == "payment_intent"
    line = invoice.lines.data[0]
    assert line.pricing.price_details.price == price.id
    assert "checkout.session.completed" in [event.type for event in harness.events()]
