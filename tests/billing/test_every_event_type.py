"""The portal processes every event type the emulator emits, without error.

The emulator itself produces one or more events of each type in `EVENT_TYPES` (its list of
what it can emit: a type cannot be emitted without being listed there), mostly through the
portal's own pages and services; each is posted, signed, to the portal's dj-stripe webhook
URL, as Stripe would. The test then checks that the portal stored and processed each one
(its object fetched and mirrored through dj-stripe), and that the portal's reactions did
their part where one applies."""

import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
import stripe
from django.urls import reverse
from djstripe.models import Customer as MirroredCustomer
from djstripe.models import TaxId

from audit.models import Entry
from billing.cards import billing_info_ensure
from billing.models import PaymentMethod, StripeEvent
from billing.setup import catalog_push
from licensing.catalog import catalog_read
from licensing.models import CustomerPlan
from stripe_emulator.context import EVENT_TYPES
from tests.billing.test_cards import CARDS_URL, add_card, start_add_card

DAY = 24 * 3600
PLANS_URL = reverse("billing:plans")


def start_upgrade(client, code: str) -> str:
    page = client.get(PLANS_URL)
    response = client.post(
        reverse("billing:plan_upgrade", args=[code]), {"attempt": page.context["attempt"]}
    )
    assert response.status_code == 302, response
    return response.url


def follow(client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}", follow=True)


def portal_journey(client, membership, stripe_emulator, stripe_client) -> dict[str, str]:
    """A customer's life through the portal, on a test clock; returns the ids it made."""
    api = stripe_client.v1
    customer = membership.customer
    catalog_push(catalog=catalog_read())
    stripe_emulator.deliver()

    clock = api.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
    api.customers.create(
        {
            "email": "owner@example.com",
            "test_clock": clock.id,
            "metadata": {"customer_id": customer.customer_id},
        }
    )
    stripe_customer = billing_info_ensure(customer=customer, email="owner@example.com").stripe_id
    stripe_emulator.deliver()

    first_card = add_card(client, stripe_emulator)

    # A declined card on the hosted setup page: the setup intent fails, nothing is recorded.
    declined = stripe_emulator.http.dispatch(
        "POST", start_add_card(client), {}, "payment_method=pm_card_chargeDeclined"
    )
    assert declined.status == 402
    stripe_emulator.deliver()
    assert list(PaymentMethod.objects.values_list("stripe_id", flat=True)) == [first_card]

    # Two tabs on the plans page, two plans: opening the second Checkout expires the first.
    # (Two tabs of one plan share one session.)
    start_upgrade(client, "pro")
    # Another card than the one on file (the same card again would be listed once).
    checkout = start_upgrade(client, "starter")
    page = follow(client, stripe_emulator.complete_checkout(checkout, "pm_card_amex"))
    assert page.status_code == 200
    stripe_emulator.deliver()
    plan = CustomerPlan.objects.get(customer=customer)
    assert (plan.plan.code, plan.status) == ("starter", "trialing")

    second_card = add_card(client, stripe_emulator, "pm_card_mastercard")
    api.payment_methods.update(second_card, {"billing_details": {"name": "Ada Lovelace"}})
    response = client.post(
        reverse("billing:payment_method_remove", args=[second_card]), {"confirm": "yes"}
    )
    assert response.status_code == 302 and response.url == CARDS_URL
    stripe_emulator.deliver()

    tax_id = api.customers.tax_ids.create(
        stripe_customer, {"type": "eu_vat", "value": "DE123456789"}
    )
    stripe_emulator.deliver()
    assert TaxId.objects.filter(id=tax_id.id).exists()
    api.tax_ids.delete(tax_id.id)
    stripe_emulator.deliver()

    # The trial ends and the first month is charged; then the plan is cancelled at its end.
    subscription = api.subscriptions.retrieve(plan.subscription_id)
    stripe_emulator.advance_clock(clock.id, subscription.trial_end + 2 * 3600)
    assert CustomerPlan.objects.get(customer=customer).status == "active"
    assert client.post(reverse("billing:plan_cancel"), {"confirm": "yes"}).status_code == 302
    stripe_emulator.deliver()
    subscription = api.subscriptions.retrieve(plan.subscription_id)
    period_end = subscription["items"].data[0].current_period_end
    stripe_emulator.advance_clock(clock.id, period_end + DAY)
    return {"first_card": first_card, "second_card": second_card, "tax_id": tax_id.id}


def back_office(stripe_emulator, stripe_client) -> dict[str, str]:
    """What happens at Stripe outside the portal's flows: manual invoices (one declined),
    catalog edits, a meter, a customer deleted before its first events are delivered."""
    api = stripe_client.v1
    buyer = api.customers.create({"email": "buyer@example.com"})
    failing = api.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": buyer.id})
    api.customers.update(buyer.id, {"invoice_settings": {"default_payment_method": failing.id}})
    item = api.invoice_items.create({"customer": buyer.id, "amount": 500, "currency": "usd"})
    api.invoice_items.delete(item.id)
    api.invoice_items.create({"customer": buyer.id, "amount": 700, "currency": "usd"})
    invoice = api.invoices.create(
        {"customer": buyer.id, "pending_invoice_items_behavior": "include"}
    )
    api.invoices.update(invoice.id, {"description": "Consulting"})
    api.invoices.finalize_invoice(invoice.id)
    with pytest.raises(stripe.CardError):
        api.invoices.pay(invoice.id)
    voided = api.invoices.create({"customer": buyer.id}).id
    api.invoice_items.create(
        {"customer": buyer.id, "amount": 300, "currency": "usd", "invoice": voided}
    )
    api.invoices.finalize_invoice(voided, {"auto_advance": False})
    api.invoices.void_invoice(voided)
    # A card needing authentication (3-D Secure): the payment waits, then the invoice is void.
    needs_action = api.payment_methods.attach(
        "pm_card_authenticationRequired", {"customer": buyer.id}
    )
    waiting = api.invoices.create({"customer": buyer.id}).id
    api.invoice_items.create(
        {"customer": buyer.id, "amount": 400, "currency": "usd", "invoice": waiting}
    )
    api.invoices.finalize_invoice(waiting, {"auto_advance": False})
    with pytest.raises(stripe.CardError):
        api.invoices.pay(waiting, {"payment_method": needs_action.id})
    api.invoices.void_invoice(waiting)
    written_off = api.invoices.create({"customer": buyer.id}).id
    api.invoice_items.create(
        {"customer": buyer.id, "amount": 200, "currency": "usd", "invoice": written_off}
    )
    api.invoices.finalize_invoice(written_off, {"auto_advance": False})
    api.invoices.mark_uncollectible(written_off)
    api.invoices.delete(api.invoices.create({"customer": buyer.id}).id)

    intent = api.setup_intents.create({"customer": buyer.id})
    api.setup_intents.cancel(intent.id)

    product = api.products.create({"name": "Retired add-on"})
    api.products.update(product.id, {"name": "Retired add-on (old)"})
    api.products.delete(product.id)
    price = api.prices.list({"lookup_keys": ["pro_monthly"]}).data[0]
    api.prices.update(price.id, {"metadata": {"note": "checked"}})

    api.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "sum"},
        }
    )

    # A plan change held for its payment (pending_if_incomplete), declined, left to expire.
    clock = api.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
    holder = api.customers.create({"email": "holder@example.com", "test_clock": clock.id})
    card = api.payment_methods.attach("pm_card_visa", {"customer": holder.id})
    api.customers.update(holder.id, {"invoice_settings": {"default_payment_method": card.id}})
    prices = {p.lookup_key: p.id for p in api.prices.list({"limit": 100}).data if p.lookup_key}
    held = api.subscriptions.create(
        {"customer": holder.id, "items": [{"price": prices["starter_monthly"]}]}
    )
    failing = api.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": holder.id})
    api.customers.update(holder.id, {"invoice_settings": {"default_payment_method": failing.id}})
    with pytest.raises(stripe.CardError):
        api.subscriptions.update(
            held.id,
            {
                "items": [{"id": held["items"].data[0].id, "price": prices["pro_monthly"]}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "pending_if_incomplete",
            },
        )
    stripe_emulator.advance_clock(clock.id, clock.frozen_time + DAY)
    # Declined again, then paid with another card: the held change applies.
    with pytest.raises(stripe.CardError):
        api.subscriptions.update(
            held.id,
            {
                "items": [{"id": held["items"].data[0].id, "price": prices["pro_monthly"]}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "pending_if_incomplete",
            },
        )
    api.invoices.pay(
        api.subscriptions.retrieve(held.id).latest_invoice, {"payment_method": card.id}
    )

    gone = api.customers.create({"email": "gone@example.com"})
    api.customers.delete(gone.id)
    api.test_helpers.test_clocks.delete(
        api.test_helpers.test_clocks.create({"frozen_time": int(time.time())}).id
    )
    stripe_emulator.deliver()
    return {"gone": gone.id, "declined_invoice": invoice.id}


def test_djstripe_processes_every_event_type_the_emulator_emits(
    signed_in_client, membership, other_membership, stripe_emulator, stripe_client
):
    made = portal_journey(signed_in_client, membership, stripe_emulator, stripe_client)
    made |= back_office(stripe_emulator, stripe_client)

    deliveries = stripe_emulator.emulator.webhooks.deliveries()
    assert {d["type"] for d in deliveries} == EVENT_TYPES
    assert all(d["succeeded"] for d in deliveries)
    stored = list(StripeEvent.objects.all())
    assert len(stored) == len({d["event"] for d in deliveries})
    failed = [(e.event_id, e.type, e.last_error) for e in stored if e.status != "processed"]
    assert failed == []
    processed = Counter(e.type for e in stored)
    assert set(processed) == EVENT_TYPES
    assert {e.event_id for e in stored} == {d["event"] for d in deliveries}

    # The portal's receivers: the first card is kept (with the one Checkout took for the
    # plan), the removed one forgotten, the plan followed the subscription to its end; the
    # other customer was left alone.
    customer = membership.customer
    cards = list(PaymentMethod.objects.for_customer(customer).order_by("order"))
    assert len(cards) == 2 and cards[0].stripe_id == made["first_card"]
    assert not PaymentMethod.objects.filter(stripe_id=made["second_card"]).exists()
    assert CustomerPlan.objects.get(customer=customer).status == "canceled"
    kinds = set(Entry.objects.filter(customer=customer).values_list("kind", flat=True))
    assert {"card_added", "card_removed", "plan_activated"} <= kinds
    assert not Entry.objects.filter(customer=other_membership.customer, kind="card_added")
    # dj-stripe's mirror: the deleted tax id and the customer deleted before its
    # customer.created was processed are not kept as live objects.
    assert not TaxId.objects.filter(id=made["tax_id"]).exists()
    assert not MirroredCustomer.objects.filter(id=made["gone"], date_purged__isnull=True).exists()


def test_customer_created_after_the_customer_was_deleted_is_stored_and_ignored(
    stripe_emulator, stripe_client
):
    """Its customer.created arrives after customer.deleted: the portal fetches the
    customer, Stripe answers the deleted customer's tombstone, and nothing is mirrored."""
    stripe_emulator.faults.add({"kind": "webhook_out_of_order", "count": 2})
    gone = stripe_client.v1.customers.create({"email": "gone@example.com"})
    stripe_client.v1.customers.delete(gone.id)
    stripe_emulator.deliver()

    stored = list(StripeEvent.objects.order_by("received_at"))
    assert [e.type for e in stored] == ["customer.deleted", "customer.created"]
    assert [(e.status, e.last_error) for e in stored] == [("processed", "")] * 2
    # At most a purged row holding the tombstone: no live customer in the mirror.
    rows = list(MirroredCustomer.objects.filter(id=gone.id))
    assert all(row.date_purged and row.stripe_data["deleted"] is True for row in rows)
    assert stripe_emulator.webhook_statuses == [200, 200]  # no retries
