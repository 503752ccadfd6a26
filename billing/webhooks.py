"""Our reactions to Stripe's events, run by `events.stripe_event_process` after the event
was verified and stored. Each takes an id from the event and calls a service that fetches
Stripe's current state, so duplicates and any order of arrival converge. Event types with
no reaction here are only mirrored (`events.object_refresh`)."""

from collections.abc import Callable

from . import cards, gateway, invoice_sync, invoicing, mirror, plans, recovery
from .models import StripeEvent


def on_checkout_session_completed(event: StripeEvent) -> None:
    if event.related.get("mode") == "setup":
        cards.checkout_setup_complete(session_id=event.object_id)
    elif event.related.get("mode") == "subscription" and event.related.get("subscription"):
        plans.subscription_sync(subscription_id=event.related["subscription"])


def on_setup_intent_succeeded(event: StripeEvent) -> None:
    if event.related.get("payment_method"):
        cards.payment_method_sync(stripe_id=event.related["payment_method"])


def on_payment_method_changed(event: StripeEvent) -> None:
    cards.payment_method_sync(stripe_id=event.object_id)


def on_subscription_changed(event: StripeEvent) -> None:
    plans.subscription_sync(subscription_id=event.object_id)


def on_subscription_pending_update_expired(event: StripeEvent) -> None:
    plans.plan_change_expired(subscription_id=event.object_id)


def on_invoice_created(event: StripeEvent) -> None:
    """A renewal's draft: held, our closed cycle's lines synced onto it, finalized only
    when its total is our ledger's."""
    invoice_sync.invoice_renewal_settle(stripe_invoice_id=event.object_id)
    invoice = gateway.object_retrieve(object_type="invoice", object_id=event.object_id)
    if invoice is not None:
        mirror.object_mirror(invoice)


def on_invoice_finalized(event: StripeEvent) -> None:
    """A cycle's invoice is final at Stripe: recorded on ours, which closes; the
    subscription has moved on, so follow it, which opens the next cycle's current invoice.
    The invoice is fetched once, and mirrored."""
    invoice = gateway.object_retrieve(object_type="invoice", object_id=event.object_id)
    if invoice is not None:
        mirror.object_mirror(invoice)
        invoice_sync.invoice_finalized_record(stripe_invoice=invoice)
        if subscription_id := invoicing.stripe_invoice_subscription_id(invoice):
            plans.subscription_sync(subscription_id=subscription_id)


def on_invoice_payment_failed(event: StripeEvent) -> None:
    """Stripe's attempt failed (or needs authentication): the customer's next card, in
    their order, when the decline is final for the card Stripe charged."""
    recovery.invoice_payment_recover(stripe_invoice_id=event.object_id)
    _invoice_mirror(event.object_id)


def on_invoice_settled(event: StripeEvent) -> None:
    """Paid (anywhere) or voided: the banner goes, no card is tried any more."""
    recovery.invoice_recovery_close(stripe_invoice_id=event.object_id)
    _invoice_mirror(event.object_id)


def _invoice_mirror(invoice_id: str) -> None:
    invoice = gateway.object_retrieve(object_type="invoice", object_id=invoice_id)
    if invoice is not None:
        mirror.object_mirror(invoice)


REACTIONS: dict[str, Callable[[StripeEvent], None]] = {
    "checkout.session.completed": on_checkout_session_completed,
    "setup_intent.succeeded": on_setup_intent_succeeded,
    "payment_method.attached": on_payment_method_changed,
    "payment_method.detached": on_payment_method_changed,
    "payment_method.updated": on_payment_method_changed,
    "customer.subscription.created": on_subscription_changed,
    "customer.subscription.updated": on_subscription_changed,
    "customer.subscription.deleted": on_subscription_changed,
    "customer.subscription.pending_update_expired": on_subscription_pending_update_expired,
    "invoice.created": on_invoice_created,
    "invoice.finalized": on_invoice_finalized,
    "invoice.payment_failed": on_invoice_payment_failed,
    "invoice.payment_action_required": on_invoice_payment_failed,
    "invoice.paid": on_invoice_settled,
    "invoice.voided": on_invoice_settled,
}
