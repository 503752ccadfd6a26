"""Collecting a failed renewal through the Stripe emulator: the customer's next card in
their order pays when the primary's decline is final, and becomes the primary; when every
card fails, an email per Stripe attempt with the pay link and a banner on every page until
the invoice is paid; what cannot be paid is refused with nothing charged."""

import pytest
from django.core import mail
from django.urls import reverse

from audit.models import Entry
from billing.models import InvoiceRecovery, PaymentAttempt
from licensing.models import CustomerPlan
from tests.billing.test_cards import add_card, card_order, stripe_default
from tests.billing.test_plans import DAY, catalog, clock, end_trial, upgrade  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # emails and tasks are queued on commit


def paid_by(stripe_client, invoice_id: str) -> list[str]:
    """The card of each payment that paid the invoice (one, or it was paid twice)."""
    payments = stripe_client.v1.invoice_payments.list({"invoice": invoice_id, "limit": 100})
    return [
        stripe_client.v1.payment_intents.retrieve(payment.payment.payment_intent).payment_method
        for payment in payments.data
        if payment.status == "paid"
    ]


def renew(stripe_emulator, stripe_client, clock, customer):  # noqa: F811
    """Advance the customer's clock through the renewal: the draft, then (an hour after
    it was answered) its finalization and Stripe's first attempt. Returns the invoice."""
    plan = CustomerPlan.objects.get(customer=customer)
    period_end = int(plan.current_period_end.timestamp())
    stripe_emulator.advance_clock(clock.id, period_end + DAY)
    stripe_emulator.advance_clock(clock.id, period_end + DAY + 2 * 3600)
    [renewal] = [
        invoice
        for invoice in stripe_client.v1.invoices.list({"subscription": plan.subscription_id})
        if invoice.billing_reason == "subscription_cycle"
    ]
    return renewal


def subscribed_with(client, membership, stripe_emulator, *tokens):
    """A paid Starter plan with the first token's card; the others added after, in order."""
    end_trial(membership.customer)
    upgrade(client, stripe_emulator, "starter", tokens[0])
    stripe_emulator.deliver()
    for token in tokens[1:]:
        add_card(client, stripe_emulator, token)
    return card_order(membership.customer)


def test_a_final_decline_is_paid_by_the_next_card_which_becomes_primary(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    visa, mastercard = subscribed_with(
        signed_in_client, membership, stripe_emulator, "pm_card_visa", "pm_card_mastercard"
    )
    stripe_emulator.emulator.card_behavior_set(visa, decline_code="expired_card")
    mail.outbox.clear()

    renewal = renew(stripe_emulator, stripe_client, clock, customer)

    renewal = stripe_client.v1.invoices.retrieve(renewal.id)
    assert renewal.status == "paid"
    assert paid_by(stripe_client, renewal.id) == [mastercard]
    assert card_order(customer) == [mastercard, visa]
    assert stripe_default(stripe_client, membership) == mastercard
    [attempt] = PaymentAttempt.objects.all()
    assert (attempt.payment_method, attempt.outcome) == (mastercard, "paid")
    assert (attempt.brand, attempt.last4) == ("mastercard", "4444")
    saved = InvoiceRecovery.objects.get(stripe_invoice_id=renewal.id)
    assert saved.status == InvoiceRecovery.Status.RECOVERED
    assert (saved.round_payment_method, saved.round_decline_code) == (visa, "expired_card")

    sentences = list(
        Entry.objects.filter(customer=customer, kind__startswith="payment_")
        .order_by("id")
        .values_list("sentence", flat=True)
    )
    assert sentences == [
        "Payment of €19.00 failed with Visa ending 4242.",
        "Payment of €19.00 tried with Mastercard ending 4444: paid.",
        "Payment of €19.00 made with Mastercard ending 4444; it is now the primary card.",
    ]
    [email] = [m for m in mail.outbox if "another card" in m.subject]
    assert "Visa ending 4242" not in email.body  # the primary is named by its reason
    assert "the card has expired" in email.body
    assert "Mastercard ending 4444 was charged instead" in email.body
    assert not [m for m in mail.outbox if "failed" in m.subject]
    # The banner never showed: the invoice was paid while the event was processed.
    assert "Pay now" not in signed_in_client.get(reverse("home")).content.decode()
