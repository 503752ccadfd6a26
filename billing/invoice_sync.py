"""Our current invoices, synced to Stripe by diff: each billable line becomes one Stripe
invoice item (pending on the subscription during the cycle, on the renewal draft at its
end), written only when the line differs from what was last synced. Stripe is called
outside any transaction; what it answered is recorded per line in a short one afterwards.
Then the drift check compares Stripe's figures with our ledger, and a renewal draft is
finalized only when its total matches ours to the cent."""

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.ledger import Source, entry_record
from billing_portal.money import money_format
from outgoing.models import EventType
from outgoing.services import outgoing_webhook_emit

from . import gateway, invoicing
from .errors import GatewayUnavailable
from .models import CustomerBilling, Invoice, InvoiceLine
from .sync import object_sync

logger = logging.getLogger(__name__)

# Our line id on each Stripe item: the drift check finds strays by it.
LINE_METADATA = "portal_invoice_line"
SKIPPED_BUSY = "another sync of this invoice is running; it goes again"


@dataclass
class SyncResult:
    invoice_id: int
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return self.created + self.updated + self.deleted


class RequestPacer:
    """Keeps a bulk run under STRIPE_REQUESTS_PER_SECOND (test mode allows 25)."""

    def __init__(self, per_second: float | None = None) -> None:
        self.interval = 1.0 / (per_second or settings.STRIPE_REQUESTS_PER_SECOND)
        self.next_at = 0.0

    def wait(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


def _stripe_customer_id(invoice: Invoice) -> str | None:
    link = CustomerBilling.objects.select_related("billing_info").filter(
        customer_id=invoice.customer_id
    )
    found = link.first()
    return found.billing_info.stripe_id if found else None


def _billable(lines) -> list[InvoiceLine]:
    """The lines that are Stripe invoice items: the plan's price is the subscription's, and
    a discount is Stripe's own arithmetic on the subscription's coupon."""
    return [
        line
        for line in lines
        if line.kind not in (InvoiceLine.Kind.PLAN, InvoiceLine.Kind.DISCOUNT)
    ]


def _needs_write(line: InvoiceLine) -> str | None:
    if line.amount > 0 and not line.stripe_invoice_item_id:
        return "create"
    if line.stripe_invoice_item_id and line.amount == 0:
        return "delete"
    if line.stripe_invoice_item_id and (line.synced_amount, line.synced_quantity) != (
        line.amount,
        line.quantity,
    ):
        return "update"
    return None


def _record(line: InvoiceLine, *, item_id: str, now: datetime) -> None:
    """What Stripe now holds for the line, and one more write in its version."""
    with transaction.atomic():
        InvoiceLine.objects.filter(pk=line.pk).update(
            stripe_invoice_item_id=item_id,
            synced_amount=line.amount,
            synced_quantity=line.quantity,
            synced_at=now,
            sync_version=F("sync_version") + 1,
        )


def _line_write(
    line: InvoiceLine, action: str, *, invoice: Invoice, customer_id: str, draft_id: str | None
) -> None:
    now = timezone.now()
    if action == "create":
        item = gateway.invoice_item_create(
            stripe_customer_id=customer_id,
            amount=line.amount,
            currency=invoice.currency,
            description=line.description,
            period=(int(line.period_start.timestamp()), int(line.period_end.timestamp())),
            metadata={LINE_METADATA: str(line.pk)},
            subscription_id=invoice.subscription_id,
            invoice_id=draft_id,
            # Per line and version: a retried sync replays the item, never makes a second.
            key=gateway.idempotency_key(
                "invoice-item", line.pk, line.sync_version, draft_id or "pending", line.amount
            ),
        )
        _record(line, item_id=item["id"], now=now)
    elif action == "update":
        gateway.invoice_item_update(
            item_id=line.stripe_invoice_item_id,
            amount=line.amount,
            description=line.description,
            key=gateway.idempotency_key(
                "invoice-item-update", line.stripe_invoice_item_id, line.sync_version, line.amount
            ),
        )
        _record(line, item_id=line.stripe_invoice_item_id, now=now)
    else:
        gateway.invoice_item_delete(item_id=line.stripe_invoice_item_id)
        _record(line, item_id="", now=now)


def invoice_sync_to_stripe(
    *, invoice_id: int, pacer: RequestPacer | None = None, check: bool = True
) -> SyncResult:
    """Send Stripe only what differs between the invoice's lines and what was last synced:
    nothing changed, no Stripe call. During the cycle the items are pending on the
    subscription; once Stripe has drafted the renewal (`stripe_invoice_id`), on the draft.
    A line that fails is left as it was (retried by the next sync, with the same key).
    One sync of an invoice at a time: one asked for meanwhile makes the running one go
    again (it then sees a renewal draft that appeared), and answers SKIPPED_BUSY."""
    ran, result = object_sync(
        stripe_id=f"portal-invoice:{invoice_id}",
        run=lambda: _invoice_sync(invoice_id=invoice_id, pacer=pacer, check=check),
    )
    return result if ran else SyncResult(invoice_id=invoice_id, skipped=SKIPPED_BUSY)


def _invoice_sync(*, invoice_id: int, pacer: RequestPacer | None, check: bool) -> SyncResult:
    invoice = Invoice.objects.get(pk=invoice_id)
    result = SyncResult(invoice_id=invoice_id)
    if not invoice.is_open:
        result.skipped = "closed"
        return result
    draft_id = invoice.stripe_invoice_id or None
    later = Invoice.objects.filter(
        customer_id=invoice.customer_id, period_start__gt=invoice.period_start
    )
    if draft_id is None and (timezone.now() >= invoice.period_end or later.exists()):
        # The cycle has ended: a pending item now would go to the next cycle's invoice.
        # This invoice's final sync happens on its renewal's invoice.created.
        result.skipped = "awaiting renewal draft"
        return result
    customer_id = _stripe_customer_id(invoice)
    if customer_id is None:
        result.skipped = "no Stripe customer"
        return result
    lines = invoicing.invoice_lines_refresh(invoice=invoice)
    for line in _billable(lines):
        action = _needs_write(line)
        if action is None:
            continue
        if pacer:
            pacer.wait()
        _line_write(line, action, invoice=invoice, customer_id=customer_id, draft_id=draft_id)
        setattr(result, f"{action}d", getattr(result, f"{action}d") + 1)
    if result.writes:
        Invoice.objects.filter(pk=invoice.pk).update(synced_at=timezone.now())
        if check and draft_id is None:
            if pacer:
                pacer.wait()
            invoice_drift_check(invoice_id=invoice.pk, stripe_customer_id=customer_id)
    return result


def _stray_items_delete(items: list[dict], lines: list[InvoiceLine]) -> list[dict]:
    """Items carrying one of our line ids that are not the item the line was synced to
    (a create whose answer never came back, then made again with another amount) are
    deleted; what is left is returned."""
    recorded = {str(line.pk): line.stripe_invoice_item_id for line in lines}
    kept = []
    for item in items:
        line_id = (item.get("metadata") or {}).get(LINE_METADATA)
        if line_id in recorded and recorded[line_id] != item["id"]:
            logger.warning("Deleting stray invoice item %s of line %s", item["id"], line_id)
            gateway.invoice_item_delete(item_id=item["id"])
            continue
        kept.append(item)
    return kept


def _drift_record(invoice: Invoice, *, ours: int, theirs: int, what: str) -> bool:
    """Record on the invoice (and, when it changes, in the audit ledger) whether Stripe's
    figure differs from ours. Returns whether they match."""
    now = timezone.now()
    matches = ours == theirs
    with transaction.atomic():
        before = Invoice.objects.select_for_update().get(pk=invoice.pk)
        changed = (before.drift_ledger_amount, before.drift_stripe_amount) != (
            (None, None) if matches else (ours, theirs)
        )
        Invoice.objects.filter(pk=invoice.pk).update(
            drift_ledger_amount=None if matches else ours,
            drift_stripe_amount=None if matches else theirs,
            drift_checked_at=now,
        )
        if changed:
            currency = invoice.currency
            entry_record(
                customer_id=invoice.customer_id,
                kind="invoice_drift_cleared" if matches else "invoice_drift",
                source=Source.SYSTEM,
                sentence=(
                    f"Stripe's {what} agrees with our ledger again: {money_format(ours, currency)}."
                    if matches
                    else f"Stripe's {what} ({money_format(theirs, currency)}) differs from our "
                    f"ledger ({money_format(ours, currency)})."
                ),
                data={
                    "invoice": invoice.pk,
                    "stripe_invoice": invoice.stripe_invoice_id,
                    "ledger_amount": ours,
                    "stripe_amount": theirs,
                    "currency": currency,
                },
            )
    return matches


def invoice_drift_check(*, invoice_id: int, stripe_customer_id: str | None = None) -> bool:
    """Compare the subscription's pending items at Stripe with our ledger's billable lines.
    Returns whether they agree; a difference is recorded with both figures."""
    invoice = Invoice.objects.get(pk=invoice_id)
    stripe_customer_id = stripe_customer_id or _stripe_customer_id(invoice)
    lines = _billable(invoice.lines.all())
    pending = [
        item
        for item in gateway.invoice_items_list(stripe_customer_id=stripe_customer_id)
        if invoicing.stripe_invoice_subscription_id(item) == invoice.subscription_id
    ]
    pending = _stray_items_delete(pending, lines)
    ours = sum(line.amount for line in lines)
    theirs = sum(item["amount"] for item in pending)
    return _drift_record(invoice, ours=ours, theirs=theirs, what="pending items")


def _renewal_invoice(draft: dict) -> Invoice | None:
    subscription_id = invoicing.stripe_invoice_subscription_id(draft)
    if not subscription_id:
        return None
    found = Invoice.objects.filter(stripe_invoice_id=draft["id"]).first()
    return (
        found
        or Invoice.objects.filter(
            subscription_id=subscription_id,
            period_start=datetime.fromtimestamp(draft["period_start"], UTC),
        ).first()
    )


def invoice_renewal_settle(*, stripe_invoice_id: str) -> bool | None:
    """On a renewal's invoice.created: hold the draft, sync the closed cycle's lines onto
    it, and finalize it (Stripe then charges) only when its total is our ledger's to the
    cent; otherwise it stays held, the drift recorded for staff. Safe to run again: each
    step is idempotent. Returns whether it was finalized (None: not ours to settle)."""
    draft = gateway.object_retrieve(object_type="invoice", object_id=stripe_invoice_id)
    if not draft or draft.get("billing_reason") != "subscription_cycle":
        return None
    invoice = _renewal_invoice(draft)
    if invoice is None or draft["status"] != "draft":
        return None
    if draft.get("auto_advance"):
        gateway.invoice_hold(invoice_id=stripe_invoice_id)
    if invoice.stripe_invoice_id != stripe_invoice_id:
        Invoice.objects.filter(pk=invoice.pk).update(stripe_invoice_id=stripe_invoice_id)
        invoice.stripe_invoice_id = stripe_invoice_id
    # Under the invoice's sync claim: no periodic sync writes between our sync and check.
    ran, finalized = object_sync(
        stripe_id=f"portal-invoice:{invoice.pk}",
        run=lambda: _settle(invoice=invoice, stripe_invoice_id=stripe_invoice_id),
    )
    if not ran:
        # The running sync goes again, onto the draft; settle once it is done (the task
        # retries on GatewayUnavailable, the draft held meanwhile).
        raise GatewayUnavailable()
    return finalized


def _settle(*, invoice: Invoice, stripe_invoice_id: str) -> bool | None:
    draft = gateway.object_retrieve(object_type="invoice", object_id=stripe_invoice_id)
    if not draft or draft["status"] != "draft":
        return None  # finalized by a run before this one
    _invoice_sync(invoice_id=invoice.pk, pacer=None, check=False)
    customer_id = _stripe_customer_id(invoice)
    items = gateway.invoice_items_list(stripe_customer_id=customer_id, invoice_id=stripe_invoice_id)
    on_draft = {item["id"] for item in items}
    misplaced = [
        line
        for line in _billable(invoice.lines.all())
        if line.stripe_invoice_item_id and line.stripe_invoice_item_id not in on_draft
    ]
    if misplaced:
        # Made pending after Stripe drafted the renewal (a periodic sync that had not seen
        # it): such an item would go to the next cycle. Deleted, and made again on the draft.
        for line in misplaced:
            gateway.invoice_item_delete(item_id=line.stripe_invoice_item_id)
            _record(line, item_id="", now=timezone.now())
        _invoice_sync(invoice_id=invoice.pk, pacer=None, check=False)
        items = gateway.invoice_items_list(
            stripe_customer_id=customer_id, invoice_id=stripe_invoice_id
        )
    lines = list(invoice.lines.all())
    _stray_items_delete(items, _billable(lines))
    # Read after the writes and the strays' removal: the total Stripe would charge.
    draft = gateway.object_retrieve(object_type="invoice", object_id=stripe_invoice_id)
    ours = sum(line.amount for line in lines)
    if not _drift_record(invoice, ours=ours, theirs=draft["total"], what="renewal draft total"):
        return False
    gateway.invoice_finalize(invoice_id=stripe_invoice_id)
    return True


def invoice_finalized_record(*, stripe_invoice: dict) -> Invoice | None:
    """Stripe's finalized renewal on our invoice: number, total, hosted page and PDF; the
    invoice is closed (its lines never change again)."""
    if stripe_invoice.get("billing_reason") != "subscription_cycle":
        return None
    invoice = _renewal_invoice(stripe_invoice)
    if invoice is None:
        return None
    finalized_at = (stripe_invoice.get("status_transitions") or {}).get("finalized_at")
    with transaction.atomic():
        # Of two deliveries of the event at once, one finalizes it and tells the endpoints.
        first_time = bool(
            Invoice.objects.filter(pk=invoice.pk)
            .exclude(status=Invoice.Status.FINALIZED)
            .update(status=Invoice.Status.FINALIZED)
        )
        Invoice.objects.filter(pk=invoice.pk).update(
            stripe_invoice_id=stripe_invoice["id"],
            status=Invoice.Status.FINALIZED,
            number=stripe_invoice.get("number") or "",
            total=stripe_invoice.get("total"),
            hosted_invoice_url=stripe_invoice.get("hosted_invoice_url") or "",
            invoice_pdf=stripe_invoice.get("invoice_pdf") or "",
            finalized_at=datetime.fromtimestamp(finalized_at, UTC) if finalized_at else None,
        )
        if first_time:
            outgoing_webhook_emit(
                customer=invoice.customer,
                type=EventType.INVOICE_FINALIZED,
                data={
                    "invoice_id": invoice.pk,
                    "stripe_invoice_id": stripe_invoice["id"],
                    "number": stripe_invoice.get("number") or "",
                    "total": stripe_invoice.get("total"),
                    "currency": invoice.currency,
                    "period_start": invoice.period_start.isoformat(),
                    "period_end": invoice.period_end.isoformat(),
                    "hosted_invoice_url": stripe_invoice.get("hosted_invoice_url") or "",
                },
            )
    invoice.refresh_from_db()
    # Finalized without our check (a hold that never reached Stripe): staff see any drift.
    ours = sum(line.amount for line in invoice.lines.all())
    if invoice.total is not None:
        _drift_record(invoice, ours=ours, theirs=invoice.total, what="finalized invoice total")
    return invoice


def invoices_sync(*, customer_id: str | None = None) -> list[SyncResult]:
    """Every open invoice (or one customer's), paced to the configured request rate. A
    failing invoice is logged and left for the next run; the others go on."""
    from .errors import BillingError

    pacer = RequestPacer()
    invoices = Invoice.objects.open().order_by("id")
    if customer_id:
        invoices = invoices.filter(customer__customer_id=customer_id)
    results = []
    for pk in list(invoices.values_list("pk", flat=True)):
        try:
            results.append(invoice_sync_to_stripe(invoice_id=pk, pacer=pacer))
        except BillingError as error:
            logger.warning("Sync of invoice %s failed: %r", pk, error)
            results.append(SyncResult(invoice_id=pk, errors=[f"{type(error).__name__}: {error}"]))
    return results
