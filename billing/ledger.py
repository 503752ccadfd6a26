"""What billing writes to the portal's audit ledger: its kinds, each with its sentence."""

from audit.ledger import Source, entries_record

SENTENCES = {
    "stripe_customer_created": "Billing account opened at Stripe.",
    "card_added": "Card added.",
    "card_removed": "Card removed.",
    "card_already_on_file": "Card entered again: it was already on file, so the copy was removed.",
    "card_reordered": "Cards reordered.",
    "card_made_primary": "Primary card changed; it is charged first.",
    "details_updated": "Billing details updated.",
    "plan_activated": "Plan {plan} started.",
    "plan_changed": "Plan changed to {plan}.",
    "plan_change_pending": "Switch to {plan} waiting for the payment to be confirmed.",
    "plan_change_declined": "Switch to {plan} not made: the payment was declined.",
    "plan_change_expired": "Switch to {plan} not made: the payment was not completed in time.",
    "plan_change_withdrawn": "Switch to {plan} withdrawn: another change was asked for.",
    "cancellation_scheduled": "Plan {plan} set to end at the close of the paid period.",
    "cancellation_withdrawn": "Plan {plan} resumed: it renews as before.",
    "subscription_ended": "Plan {plan} ended.",
    "stripe_customer_gone": "Billing account not found at Stripe: the link was removed.",
    "subscription_gone": "Plan not found at Stripe: it was ended here.",
    "payment_failed": "Payment of {amount} failed with {card}.",
    "payment_attempted": "Payment of {amount} tried with {card}: {outcome}.",
    "payment_recovered": "Payment of {amount} made with {card}; it is now the primary card.",
    "payment_settled": "Invoice of {amount} is {status} now.",
}
# Where a change came from, as the services name it, in the ledger's words.
SOURCES = {
    "portal": Source.CUSTOMER,
    "stripe": Source.STRIPE,
    "staff": Source.STAFF,
    "system": Source.SYSTEM,
}


def billing_entries_record(
    *, customer_ids: list[str], kind: str, source: str, plan: str = "", **data
) -> list:
    return entries_record(
        customer_ids=customer_ids,
        kind=kind,
        source=SOURCES.get(source, source),
        sentence=SENTENCES[kind].format(plan=plan, **data),
        data=data,
    )
