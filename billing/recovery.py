"""Collecting a failed invoice payment with the customer's other cards, in their order.

Stripe's own attempt (the renewal, then each Smart Retry) charges the primary card. When it
fails with a decline that is final for that card (`declines.FINAL_DECLINE_CODES`), the next
card in the customer's order pays the invoice (`POST /v1/invoices/{id}/pay`), one card at a
time, each under an idempotency key of (invoice, card, round). Every attempt is written as
pending before it goes out and settled by its answer, and at most one attempt of an invoice
is pending: a lost answer is asked again under the same key (Stripe replays it) before any
other card is tried, so no invoice is ever paid twice, whoever runs this and however often.

The first card that pays becomes the primary card here and Stripe's default. When no card
pays, the customer is emailed the hosted invoice's pay link once per Stripe attempt, and
every portal page shows a banner until the invoice is paid. No Stripe call is made while
a transaction is open."""

import logging
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Customer
from billing_portal.money import money_format
from licensing.models import CustomerPlan

from . import cards, gateway, invoicing, mirror
from .declines import AUTHENTICATION, decline_is_final
from .ledger import billing_entries_record
from .models import BillingInfo, Invoice, InvoiceRecovery, PaymentAttempt, PaymentMethod

logger = logging.getLogger(__name__)

Outcome = PaymentAttempt.Outcome
# Stripe's invoice statuses that still wait for a payment (an uncollectible invoice can
# still be paid, on its hosted page too).
UNPAID = {"open", "uncollectible"}
# The invoices whose failed payment the customer's other cards are tried on: renewals (the
# trial's end included). A plan change's invoice is not: its decline leaves the plan as it
# was, and the customer chooses what to do on the plan page.
RECOVERED_REASONS = {"subscription_cycle"}


def invoice_payment_recover(*, stripe_invoice_id: str) -> InvoiceRecovery | None:
    """The reaction to `invoice.payment_failed` and `invoice.payment_action_required`:
    start the round for Stripe's newest attempt if it is new, then go on where the last
    run stopped. Our own attempts' events find nothing more to do."""
    recovery = InvoiceRecovery.objects.filter(stripe_invoice_id=stripe_invoice_id).first()
    _pending_settle(recovery)  # first: its lost answer may be what paid the invoice
    if recovery is not None and not recovery.is_open:
        return recovery
    invoice = gateway.object_retrieve(object_type="invoice", object_id=stripe_invoice_id)
    if invoice is None:
        return recovery
    if invoice["status"] not in UNPAID:
        if recovery is not None:
            _close(recovery, invoice)
        return recovery
    if (
        invoice.get("billing_reason") not in RECOVERED_REASONS
        or invoice.get("collection_method") != "charge_automatically"
        or not invoice["attempt_count"]
    ):
        return recovery
    if recovery is None or recovery.round < invoice["attempt_count"]:
        recovery = _round_start(invoice, recovery)
        if recovery is None:
            return None
    _recovery_continue(recovery, invoice)
    recovery.refresh_from_db()
    return recovery


def card_try_on_open_invoices(*, payment_method_id: str) -> list[InvoiceRecovery]:
    """A card added while an invoice of its customer is unpaid is tried on it at once."""
    card = PaymentMethod.objects.filter(stripe_id=payment_method_id).first()
    if card is None:
        return []
    tried = []
    for recovery in InvoiceRecovery.objects.filter(billing_info_id=card.billing_info_id).filter(
        status=InvoiceRecovery.Status.OPEN
    ):
        _pending_settle(recovery)
        invoice = gateway.object_retrieve(
            object_type="invoice", object_id=recovery.stripe_invoice_id
        )
        if invoice is None:
            continue
        if invoice["status"] not in UNPAID:
            _close(recovery, invoice)
            continue
        _recovery_continue(recovery, invoice, only=payment_method_id)
        tried.append(recovery)
    return tried


def invoice_recovery_close(*, stripe_invoice_id: str) -> InvoiceRecovery | None:
    """`invoice.paid` (paid anywhere: by Stripe's retry, on the hosted page…) or voided:
    the banner goes and no card is tried any more."""
    recovery = InvoiceRecovery.objects.filter(stripe_invoice_id=stripe_invoice_id).first()
    _pending_settle(recovery)
    if recovery is None or not recovery.is_open:
        return recovery
    invoice = gateway.object_retrieve(object_type="invoice", object_id=stripe_invoice_id)
    if invoice is not None and invoice["status"] not in UNPAID:
        _close(recovery, invoice)
    return recovery


# --- Rounds ---------------------------------------------------------------------------------


def _customer_of(invoice: dict, billing_info: BillingInfo) -> Customer | None:
    """The account whose subscription the invoice bills; else our own invoice's; else the
    one account billing through this Stripe customer."""
    subscription_id = invoicing.stripe_invoice_subscription_id(invoice)
    if subscription_id:
        plan = CustomerPlan.objects.filter(subscription_id=subscription_id).first()
        if plan is not None:
            return plan.customer
    ours = Invoice.objects.filter(stripe_invoice_id=invoice["id"]).first()
    if ours is not None:
        return ours.customer
    links = list(billing_info.customer_links.select_related("customer")[:2])
    return links[0].customer if len(links) == 1 else None


def _round_start(invoice: dict, recovery: InvoiceRecovery | None) -> InvoiceRecovery | None:
    """Record Stripe's newest attempt as this round's: the card it charged and why it
    failed. Concurrent runs agree on the row (unique invoice id) and on the round."""
    billing_info = BillingInfo.objects.filter(stripe_id=invoice["customer"]).first()
    if billing_info is None:
        return None
    customer = recovery.customer if recovery else _customer_of(invoice, billing_info)
    if customer is None:
        logger.info("Invoice %s is of no account we know", invoice["id"])
        return None
    latest = gateway.invoice_latest_payment(invoice_id=invoice["id"])
    failed_at = (
        datetime.fromtimestamp(latest.created, UTC) if latest and latest.created else timezone.now()
    )
    round_ = invoice["attempt_count"]
    try:
        with transaction.atomic():
            recovery, _created = InvoiceRecovery.objects.select_for_update().get_or_create(
                stripe_invoice_id=invoice["id"],
                defaults={
                    "billing_info": billing_info,
                    "customer": customer,
                    "amount": invoice["amount_remaining"],
                    "currency": invoice["currency"],
                    "hosted_invoice_url": invoice.get("hosted_invoice_url") or "",
                    "failed_at": failed_at,
                },
            )
            if recovery.round >= round_:
                return recovery  # a concurrent run started this round
            recovery.round = round_
            recovery.round_payment_method = latest.payment_method if latest else ""
            recovery.round_decline_code = latest.decline_code if latest else ""
            recovery.amount = invoice["amount_remaining"]
            recovery.hosted_invoice_url = invoice.get("hosted_invoice_url") or ""
            recovery.save()
            _timeline(
                recovery,
                "payment_failed",
                card=mirror.card_label(recovery.round_payment_method),
                payment_method=recovery.round_payment_method,
                decline_code=recovery.round_decline_code,
                round=round_,
            )
    except IntegrityError:  # the row was created concurrently: take it as it is now
        return InvoiceRecovery.objects.filter(stripe_invoice_id=invoice["id"]).first()
    return recovery


def _next_card(recovery: InvoiceRecovery) -> str | None:
    """The card to try next in this round, or None when the round is over: Stripe's card
    of this round declined for a reason retrying it could fix (it retries it itself), a
    tried card declined likewise or needs authentication, or every card has been tried."""
    trigger = recovery.round_decline_code
    trigger_card = recovery.round_payment_method
    order = list(
        recovery.billing_info.payment_methods.order_by("order", "created_at").values_list(
            "stripe_id", flat=True
        )
    )
    if trigger_card in order and not decline_is_final(trigger):
        return None  # not final (or authentication): not ours to move to another card
    attempts = list(recovery.attempts.all())
    this_round = [a for a in attempts if a.round == recovery.round]
    if any(a.outcome == Outcome.REQUIRES_ACTION or _blocks(a) for a in this_round):
        return None
    done = {a.payment_method for a in this_round}
    done |= {a.payment_method for a in attempts if a.final or a.outcome == Outcome.SKIPPED}
    done.add(trigger_card)
    return next((card for card in order if card not in done), None)


def _blocks(attempt: PaymentAttempt) -> bool:
    """A decline that is not final: the next card waits for a later round."""
    return attempt.outcome == Outcome.DECLINED and not attempt.final


def _recovery_continue(recovery: InvoiceRecovery, invoice: dict, *, only: str | None = None):
    """Settle the pending attempt if one was left, then try cards until one pays or the
    round is over; with `only`, that card alone (a card just added)."""
    tried_only = False
    while True:
        recovery.refresh_from_db()
        if not recovery.is_open:
            return
        attempt = recovery.attempts.filter(outcome=Outcome.PENDING).first()
        if attempt is None:
            if only is not None:
                if (
                    tried_only
                    or recovery.attempts.filter(
                        Q(round=recovery.round) | Q(final=True), payment_method=only
                    ).exists()
                ):
                    break
                card = only
                tried_only = True
            else:
                card = _next_card(recovery)
            if card is None:
                break
            attempt = _attempt_open(recovery, card)
            if attempt is None:
                continue  # a concurrent run opened one: settle that one first
        if _attempt_send(recovery, attempt) in (Outcome.PAID, Outcome.NOT_PAYABLE):
            return
    _round_end(recovery)


def _attempt_send(recovery: InvoiceRecovery, attempt: PaymentAttempt) -> str:
    """Send (or send again: the same key replays Stripe's answer) one attempt, settle it,
    and act on it. Returns its outcome."""
    result = gateway.invoice_pay_with(
        invoice_id=recovery.stripe_invoice_id,
        payment_method_id=attempt.payment_method,
        key=gateway.idempotency_key(
            "invoice-pay", recovery.stripe_invoice_id, attempt.payment_method, attempt.round
        ),
    )
    if result.outcome == "not_payable" and result.invoice_status == "paid":
        # Paid already: by this very attempt, if its answer was lost and the key has
        # expired at Stripe since (Stripe keeps keys for 24 hours).
        latest = gateway.invoice_latest_payment(invoice_id=recovery.stripe_invoice_id)
        if (
            latest
            and latest.status == "succeeded"
            and latest.payment_method == attempt.payment_method
        ):
            result = gateway.PayResult("paid", invoice_status="paid")
    _attempt_settle(attempt, result)
    if attempt.outcome == Outcome.SKIPPED:
        # Detached at Stripe meanwhile: the sync forgets it, which repairs the order.
        cards.payment_method_sync(stripe_id=attempt.payment_method)
    elif attempt.outcome == Outcome.NOT_PAYABLE:
        current = gateway.object_retrieve(
            object_type="invoice", object_id=recovery.stripe_invoice_id
        )
        if current is not None:
            _close(recovery, current)
    elif attempt.outcome == Outcome.PAID:
        _recovered(recovery, attempt)
    return attempt.outcome


def _pending_settle(recovery: InvoiceRecovery | None) -> None:
    """An attempt whose answer was lost is settled first, whatever the invoice's state
    now: it may be what paid it."""
    if recovery is None:
        return
    attempt = recovery.attempts.filter(outcome=Outcome.PENDING).first()
    if attempt is not None:
        _attempt_send(recovery, attempt)
        recovery.refresh_from_db()


def _attempt_open(recovery: InvoiceRecovery, card: str) -> PaymentAttempt | None:
    """Write the attempt as pending, before the request: the one-pending constraint (and
    the row lock, where the database has one) lets a single run open it."""
    try:
        with transaction.atomic():
            locked = InvoiceRecovery.objects.select_for_update().get(pk=recovery.pk)
            if not locked.is_open or locked.attempts.filter(outcome=Outcome.PENDING).exists():
                return None
            return PaymentAttempt.objects.create(
                recovery=locked,
                payment_method=card,
                round=locked.round,
            )
    except IntegrityError:
        return None


def _attempt_settle(attempt: PaymentAttempt, result: gateway.PayResult) -> None:
    outcome = {
        "paid": Outcome.PAID,
        "declined": Outcome.DECLINED,
        "requires_action": Outcome.REQUIRES_ACTION,
        "card_unusable": Outcome.SKIPPED,
        "not_payable": Outcome.NOT_PAYABLE,
    }[result.outcome]
    final = outcome == Outcome.DECLINED and decline_is_final(result.decline_code)
    # The card as the timeline tells it, read from the mirror while it is still there.
    shown = mirror.cards_for_display(
        list(PaymentMethod.objects.filter(stripe_id=attempt.payment_method))
    )
    with transaction.atomic():
        settled = PaymentAttempt.objects.filter(pk=attempt.pk, outcome=Outcome.PENDING).update(
            outcome=outcome,
            decline_code=result.decline_code[:64],
            final=final,
            settled_at=timezone.now(),
        )
        if settled:  # one entry per attempt, however many runs saw its answer
            _timeline(
                attempt.recovery,
                "payment_attempted",
                card=mirror.card_label(attempt.payment_method),
                outcome=str(outcome.label).lower(),
                payment_method=attempt.payment_method,
                brand=shown[0].brand if shown else "",
                last4=shown[0].last4 if shown else "",
                attempt=attempt.pk,
                round=attempt.round,
                result=str(outcome),
                decline_code=result.decline_code,
                final=final,
            )
    attempt.refresh_from_db()


def _recovered(recovery: InvoiceRecovery, attempt: PaymentAttempt) -> None:
    """The card that paid becomes the primary, here and at Stripe; the customer is told
    which card failed and which was charged."""
    with transaction.atomic():
        # Open, or closed as paid by an `invoice.paid` that came before the lost answer.
        closed = InvoiceRecovery.objects.filter(
            pk=recovery.pk,
            status__in=[InvoiceRecovery.Status.OPEN, InvoiceRecovery.Status.PAID],
        ).update(status=InvoiceRecovery.Status.RECOVERED, closed_at=timezone.now())
        if closed:
            _timeline(
                recovery,
                "payment_recovered",
                card=attempt.card_label,
                payment_method=attempt.payment_method,
                attempt=attempt.pk,
            )
            _email(recovery, "payment_recovered")
    card = PaymentMethod.objects.filter(stripe_id=attempt.payment_method).first()
    if card is not None and card.order != 0:
        cards.payment_method_make_primary(card=card, source="system")


def _round_end(recovery: InvoiceRecovery) -> None:
    """No card paid this round: one email for Stripe's attempt, with the pay link (or,
    when a card needs the customer to authenticate, the link to do so). Attempts whose
    events are only processed together (the portal was down for days) share one email:
    the round is Stripe's attempt count when it is processed."""
    with transaction.atomic():
        emailed = InvoiceRecovery.objects.filter(
            pk=recovery.pk, status=InvoiceRecovery.Status.OPEN, notified_round__lt=recovery.round
        ).update(notified_round=recovery.round)
        if emailed:
            needs_action = recovery.round_decline_code == AUTHENTICATION or (
                recovery.attempts.filter(
                    round=recovery.round, outcome=Outcome.REQUIRES_ACTION
                ).exists()
            )
            _email(recovery, "payment_action_required" if needs_action else "payment_failed")


def _close(recovery: InvoiceRecovery, invoice: dict) -> None:
    paid = invoice["status"] == "paid"
    status = InvoiceRecovery.Status.PAID if paid else InvoiceRecovery.Status.CLOSED
    with transaction.atomic():
        closed = InvoiceRecovery.objects.filter(
            pk=recovery.pk, status=InvoiceRecovery.Status.OPEN
        ).update(status=status, closed_at=timezone.now())
        if closed:
            _timeline(recovery, "payment_settled", status=invoice["status"])
    recovery.refresh_from_db()


# --- Timeline and emails --------------------------------------------------------------------


def _timeline(recovery: InvoiceRecovery, kind: str, **data) -> None:
    billing_entries_record(
        customer_ids=[recovery.customer_id],
        kind=kind,
        source="stripe" if kind in ("payment_failed", "payment_settled") else "system",
        invoice=recovery.stripe_invoice_id,
        amount=money_format(recovery.amount, recovery.currency),
        **data,
    )


def _email(recovery: InvoiceRecovery, template: str) -> None:
    from . import tasks

    recovery_id, round_ = recovery.pk, recovery.round
    transaction.on_commit(
        lambda: tasks.recovery_email_send.delay(
            recovery_id=recovery_id, template=template, round=round_
        )
    )
