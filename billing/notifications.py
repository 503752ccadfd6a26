"""The emails billing sends about collecting a failed payment, rendered from
templates/email/. Tasks call these with ids; nothing here imports services or tasks."""

from django.conf import settings
from django.urls import reverse

from accounts.emails import email_send
from licensing.notifications import customer_billing_contacts

from .declines import decline_reason
from .mirror import card_label
from .models import InvoiceRecovery, PaymentAttempt


def recovery_email_send(*, recovery_id: int, template: str, round: int) -> None:
    """`payment_failed` (no card paid: the pay link), `payment_action_required` (a card
    needs the customer to authenticate: the same link) or `payment_recovered` (which card
    failed and which was charged), to the account's owners and billing members."""
    recovery = InvoiceRecovery.objects.select_related("customer").get(pk=recovery_id)
    attempts = list(recovery.attempts.all())
    charged = next((a for a in attempts if a.outcome == PaymentAttempt.Outcome.PAID), None)
    failed = [
        {"card": attempt.card_label, "reason": decline_reason(attempt.decline_code)}
        for attempt in attempts
        if attempt.round == round and attempt.outcome != PaymentAttempt.Outcome.PAID
    ]
    context = {
        "customer": recovery.customer,
        "recovery": recovery,
        "first_card": card_label(recovery.round_payment_method),
        "first_reason": decline_reason(recovery.round_decline_code),
        "failed": failed,
        "charged": charged,
        "pay_url": recovery.hosted_invoice_url,
        "cards_url": settings.PORTAL_BASE_URL + reverse("billing:payment_methods"),
    }
    for email in customer_billing_contacts(customer=recovery.customer):
        email_send(to=email, template=template, context=context)
