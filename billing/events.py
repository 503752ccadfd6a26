"""Stripe's events: verified and stored at receipt, processed afterwards by a task, and
recovered from Stripe's events list when a webhook never came.

Receipt does no more than dj-stripe's signature check and one row here, so it answers at
once and holds no transaction across anything slow. Processing runs each event's reaction
(`webhooks.REACTIONS`) or refreshes the object's mirror; failures are recorded on the row
for staff, and retried with backoff by the task and again by the reconcile."""

import logging
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import gateway, mirror
from .errors import BillingError, GatewayUnavailable
from .models import EventReconcile, StripeEvent
from .webhook_events import WEBHOOK_EVENTS
from .webhooks import REACTIONS

logger = logging.getLogger(__name__)

# The ids processing follows from an event's object, by object type.
RELATED_FIELDS = {
    "checkout.session": ("mode", "subscription", "setup_intent"),
    "setup_intent": ("payment_method",),
}
# Stripe keeps events for 30 days: the first reconcile looks that far back.
EVENTS_KEPT = timedelta(days=30)
# Each pass starts this far before the newest event the last one saw: events are not
# listed the instant they are created.
RECONCILE_OVERLAP = timedelta(minutes=10)


def _id(value) -> str:
    return value.get("id", "") if isinstance(value, dict) else (value or "")


def stripe_event_record(*, payload: dict, source: str) -> tuple[StripeEvent, bool]:
    """Store an event once, by its id, and queue its processing after the commit.
    Returns (the event, whether it was new); a duplicate delivery changes nothing."""
    existing = StripeEvent.objects.filter(pk=payload["id"]).first()
    if existing:
        return existing, False
    obj = (payload.get("data") or {}).get("object") or {}
    object_type = obj.get("object") or ""
    related = {field: _id(obj.get(field)) for field in RELATED_FIELDS.get(object_type, ())}
    try:
        with transaction.atomic():
            event = StripeEvent.objects.create(
                event_id=payload["id"],
                type=payload.get("type") or "",
                object_type=object_type,
                object_id=obj.get("id") or "",
                related={k: v for k, v in related.items() if v},
                stripe_created=datetime.fromtimestamp(payload.get("created") or 0, UTC),
                source=source,
            )
    except IntegrityError:  # the same event, delivered twice at once
        return StripeEvent.objects.get(pk=payload["id"]), False
    if source == StripeEvent.Source.WEBHOOK:
        from . import tasks

        # Robust: whatever happens to the queueing (or, in eager mode, to the processing),
        # the receipt has been stored and answers 2xx; the reconcile picks the event up.
        event_id = event.pk
        transaction.on_commit(
            lambda: tasks.stripe_event_process.delay(event_id=event_id), robust=True
        )
    return event, True


def object_refresh(event: StripeEvent) -> None:
    """The default reaction: bring the event's object, as Stripe has it now, into the
    mirror; an object Stripe has deleted (or answers with its tombstone) leaves the mirror.
    Types the portal does not mirror are left alone."""
    if event.object_type not in gateway.OBJECT_PATHS or not event.object_id:
        return  # not mirrored, or nothing to fetch (invoice.upcoming's preview has no id)
    current = None
    if not event.type.endswith(".deleted"):
        current = gateway.object_retrieve(object_type=event.object_type, object_id=event.object_id)
    if current is None or current.get("deleted"):
        mirror.object_forget(object_type=event.object_type, object_id=event.object_id)
    else:
        mirror.object_mirror(current)


def stripe_event_process(*, event_id: str) -> bool:
    """Run an event's reaction, once it has succeeded. Returns whether it is processed.
    GatewayUnavailable is raised again for the task to retry (with the same idempotency
    keys: they derive from the objects, not from the attempt); any other failure is
    recorded on the event and left for the reconcile."""
    rows = StripeEvent.objects.filter(pk=event_id)
    event = rows.first()
    if event is None or event.status == StripeEvent.Status.PROCESSED:
        return event is not None
    rows.update(attempts=F("attempts") + 1)
    try:
        REACTIONS.get(event.type, object_refresh)(event)
    except GatewayUnavailable as error:
        _failed(rows, error)
        raise
    except BillingError as error:
        _failed(rows, error)
        return False
    except Exception as error:
        _failed(rows, error)
        raise
    rows.update(status=StripeEvent.Status.PROCESSED, processed_at=timezone.now(), last_error="")
    return True


def stripe_event_replay(*, event_id: str) -> bool:
    """Process a stored event again (support replaying it) through the same path: its
    reaction fetches the object again, so Stripe's state now decides what changes.
    Returns whether it is processed; an unknown event is a BillingError."""
    if not StripeEvent.objects.filter(pk=event_id).update(status=StripeEvent.Status.PENDING):
        raise BillingError("No such stored event.")
    return stripe_event_process(event_id=event_id)


def _failed(rows, error: Exception) -> None:
    logger.warning("Stripe event %s failed: %r", rows.first(), error, exc_info=error)
    rows.update(status=StripeEvent.Status.FAILED, last_error=f"{type(error).__name__}: {error}")


def events_reconcile(*, now: datetime | None = None) -> EventReconcile:
    """List Stripe's events from the stored cursor (less an overlap), oldest first, and
    process through the same path each one not processed yet: the webhooks that never
    came, or failed. Every pass is recorded, with how many it repaired."""
    now = now or timezone.now()
    last = EventReconcile.objects.filter(cursor__isnull=False).first()
    since = last.cursor - RECONCILE_OVERLAP if last else now - EVENTS_KEPT
    run = EventReconcile.objects.create(started_at=now, cursor=last.cursor if last else None)
    try:
        for payload in gateway.events_since(created_gte=int(since.timestamp())):
            if payload["type"] not in WEBHOOK_EVENTS:
                continue  # not sent to the endpoint either: uninterrupted delivery skips it
            run.listed += 1
            event, _new = stripe_event_record(payload=payload, source=StripeEvent.Source.RECONCILE)
            if event.status != StripeEvent.Status.PROCESSED and stripe_event_process(
                event_id=event.pk
            ):
                run.repaired += 1
            if run.cursor is None or event.stripe_created > run.cursor:
                run.cursor = event.stripe_created
        # Those received but left failed (or whose task never ran), however old.
        stuck = StripeEvent.objects.exclude(status=StripeEvent.Status.PROCESSED).filter(
            received_at__lt=now - RECONCILE_OVERLAP
        )
        for event_id in list(stuck.values_list("pk", flat=True)):
            if stripe_event_process(event_id=event_id):
                run.repaired += 1
    except BillingError as error:
        run.error = f"{type(error).__name__}: {error}"
    finally:
        run.finished_at = timezone.now()
        run.save()
    return run


def reconcile_status() -> dict:
    """What staff see: the cursor, how far it lags, what the last pass repaired, and the
    events still waiting or failed."""
    last = EventReconcile.objects.first()
    cursor = EventReconcile.objects.filter(cursor__isnull=False).values_list("cursor", flat=True)
    cursor = cursor.first()
    return {
        "cursor": cursor,
        "lag": timezone.now() - cursor if cursor else None,
        "last_run": last,
        "pending": StripeEvent.objects.filter(status=StripeEvent.Status.PENDING).count(),
        "failed": StripeEvent.objects.filter(status=StripeEvent.Status.FAILED).count(),
    }
