"""The Stripe events this portal's webhook endpoint is subscribed to: those it reacts to and
those it keeps dj-stripe's mirror current with on purpose. `stripe_setup` registers exactly
these (and brings an existing endpoint back to them); anything else Stripe would send is
work for nobody."""

WEBHOOK_EVENTS: tuple[str, ...] = (
    # Cards: our receivers record or forget a card (billing/webhooks.py), whichever of the
    # return page and these arrives first; `updated` keeps the brand and expiry shown current.
    "checkout.session.completed",
    "setup_intent.succeeded",
    "payment_method.attached",
    "payment_method.detached",
    "payment_method.updated",
    # Plans: every change of the subscription re-syncs the customer's plan projection.
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    # A plan change that waited for its payment was dropped: the customer is told.
    "customer.subscription.pending_update_expired",
    # The Stripe customer: its default card changes, and a deletion purges its mirror.
    "customer.created",
    "customer.updated",
    "customer.deleted",
    # Invoices: the invoice pages and the usage sync read them from the mirror, which follows
    # each one from draft to paid, failed, voided or deleted.
    "invoice.created",
    "invoice.updated",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.voided",
    # Collecting: a failed payment tries the customer's next card (billing/recovery.py); a
    # card needing authentication sends the customer the hosted invoice's link.
    "invoice.payment_action_required",
    "invoice.deleted",
    # The catalog: Checkout is opened with the plan's price found in the mirror by lookup key.
    "price.created",
    "price.updated",
)
