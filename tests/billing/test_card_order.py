"""Through the Stripe emulator: the card we list first is the card Stripe charges (Checkout's
own card on the subscription is taken away), and a card entered again through either
Checkout is listed once."""

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from audit.models import Entry
from billing.models import PaymentMethod
from licensing.models import CustomerPlan
from tests.billing.test_cards import CARDS_URL, add_card, card_order, start_add_card, stripe_default
from tests.billing.test_plans import DAY, catalog, clock, end_trial, upgrade  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # as the plan tests: on-commit work


def paid_with(stripe_client, invoice_id: str) -> str:
    [payment] = stripe_client.v1.invoice_payments.list({"invoice": invoice_id}).data
    intent = stripe_client.v1.payment_intents.retrieve(payment.payment.payment_intent)
    return intent.payment_method


def test_the_renewal_charges_the_card_made_primary(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    end_trial(customer)
    upgrade(signed_in_client, stripe_emulator, "starter")
    stripe_emulator.deliver()
    plan = CustomerPlan.objects.get(customer=customer)
    [visa] = card_order(customer)
    subscription = stripe_client.v1.subscriptions.retrieve(plan.subscription_id)
    # Checkout gave the subscription its own card; the portal took it away.
    assert subscription.default_payment_method is None
    assert stripe_default(stripe_client, membership) == visa

    mastercard = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")
    signed_in_client.post(reverse("billing:payment_method_make_primary", args=[mastercard]))
    assert card_order(customer) == [mastercard, visa]

    period_end = int(plan.current_period_end.timestamp())
    stripe_emulator.advance_clock(clock.id, period_end + DAY)
    # The renewal is finalized and charged an hour after its invoice.created was answered.
    stripe_emulator.advance_clock(clock.id, period_end + DAY + 2 * 3600)
    [renewal] = [
        invoice
        for invoice in stripe_client.v1.invoices.list({"subscription": plan.subscription_id})
        if invoice.billing_reason == "subscription_cycle"
    ]
    assert renewal.status == "paid"
    assert paid_with(stripe_client, renewal.id) == mastercard


@pytest.mark.parametrize("webhooks_first", [False, True])
def test_the_same_card_added_twice_is_listed_once(
    signed_in_client, membership, stripe_emulator, stripe_client, webhooks_first
):
    first = add_card(signed_in_client, stripe_emulator)
    copy_return = stripe_emulator.complete_checkout(start_add_card(signed_in_client))
    if webhooks_first:
        stripe_emulator.deliver()
    parts = urlsplit(copy_return)
    response = signed_in_client.get(f"{parts.path}?{parts.query}", follow=True)
    assert "That card is already on file" in response.content.decode()
    assert "Your card was added." not in response.content.decode()
    stripe_emulator.deliver()

    assert card_order(membership.customer) == [first]
    stripe_customer = membership.customer.billing.billing_info.stripe_id
    attached = stripe_client.v1.payment_methods.list({"customer": stripe_customer}).data
    assert [pm.id for pm in attached] == [first]  # the copy was detached at Stripe
    assert stripe_default(stripe_client, membership) == first
    [entry] = Entry.objects.filter(customer=membership.customer, kind="card_already_on_file")
    assert entry.data["kept"] == first
    assert signed_in_client.get(CARDS_URL).content.decode().count("Visa ending 4242") == 1

    # Another card is still another card.
    other = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")
    assert card_order(membership.customer) == [first, other]


def test_subscribing_with_a_card_on_file_does_not_list_it_twice(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    end_trial(customer)
    on_file = add_card(signed_in_client, stripe_emulator)
    upgrade(signed_in_client, stripe_emulator, "starter")  # the same Visa, typed again
    stripe_emulator.deliver()

    plan = CustomerPlan.objects.get(customer=customer)
    assert (plan.plan.code, plan.status) == ("starter", "active")
    assert card_order(customer) == [on_file]
    attached = stripe_client.v1.payment_methods.list({"customer": clock_customer(membership)})
    assert [pm.id for pm in attached.data] == [on_file]
    subscription = stripe_client.v1.subscriptions.retrieve(plan.subscription_id)
    assert subscription.default_payment_method is None
    assert stripe_default(stripe_client, membership) == on_file
    assert PaymentMethod.objects.count() == 1


def clock_customer(membership) -> str:
    return membership.customer.billing.billing_info.stripe_id
