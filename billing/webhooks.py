"""Our reactions to Stripe's events, after dj-stripe has verified, stored and re-fetched
them. Each takes the id from the event and calls a service that reads Stripe's current
state, so duplicates and any order of arrival converge."""

from djstripe.event_handlers import djstripe_receiver

from . import cards, invoicing, plans


@djstripe_receiver("checkout.session.completed")
def on_checkout_session_completed(sender, event, **kwargs):
    session = event.data["object"]
    if session.get("mode") == "setup":
        cards.checkout_setup_complete(session_id=session["id"])
    elif session.get("mode") == "subscription" and session.get("subscription"):
        plans.subscription_sync(subscription_id=session["subscription"])


@djstripe_receiver("setup_intent.succeeded")
def on_setup_intent_succeeded(sender, event, **kwargs):
    payment_method = event.data["object"].get("payment_method")
    if payment_method:
        cards.payment_method_sync(stripe_id=payment_method)


@djstripe_receiver(["payment_method.attached", "payment_method.detached"])
def on_payment_method_changed(sender, event, **kwargs):
    cards.payment_method_sync(stripe_id=event.data["object"]["id"])


@djstripe_receiver(
    [
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ]
)
def on_subscription_changed(sender, event, **kwargs):
    plans.subscription_sync(subscription_id=event.data["object"]["id"])


@djstripe_receiver("invoice.finalized")
def on_invoice_finalized(sender, event, **kwargs):
    """A cycle's invoice is final at Stripe: the subscription has moved on, so follow it,
    which opens the next cycle's current invoice."""
    subscription_id = invoicing.stripe_invoice_subscription_id(event.data["object"])
    if subscription_id:
        plans.subscription_sync(subscription_id=subscription_id)
