"""Emitting events to the business's endpoints, and delivering them: signed like Stripe's
webhooks (`Billing-Portal-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.body">` with the
endpoint's secret), POSTed by a Celery task after the commit, retried with backoff for a
day. The portal never waits on an endpoint: an attempt is bounded by a timeout and runs in
the worker."""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Customer

from .models import Attempt, Delivery, Endpoint, Event, EventType

SIGNATURE_HEADER = "Billing-Portal-Signature"
# Seconds before each retry: 8 attempts over about a day, then the delivery gives up.
RETRY_DELAYS = [60, 300, 1800, 2 * 3600, 4 * 3600, 8 * 3600, 9 * 3600]
TIMEOUT_SECONDS = 10


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event_body(event: Event) -> bytes:
    """What is POSTed: the same bytes on every attempt (receivers dedupe by `id`)."""
    payload = {
        "id": event.event_id,
        "type": event.type,
        "created": int(event.created_at.timestamp()),
        "customer_id": event.customer_id,
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def outgoing_webhook_emit(*, customer: Customer, type: str, data: dict) -> Event | None:
    """Send `type` with `data` about `customer` to every active endpoint that takes it,
    after the current transaction commits (nothing is sent for a rolled-back change).
    Returns the event, or None when no endpoint wants it. `data` must be JSON."""
    if type not in EventType.values:
        raise ValueError(f"Not an outgoing event type: {type}")
    endpoints = [e for e in Endpoint.objects.filter(is_active=True) if e.wants(type)]
    if not endpoints:
        return None
    from . import tasks

    with transaction.atomic():
        event = Event.objects.create(customer=customer, type=type, data=data)
        deliveries = Delivery.objects.bulk_create(
            Delivery(event=event, endpoint=endpoint) for endpoint in endpoints
        )
    for delivery in deliveries:
        # Robust: a broker that is down must not undo the change that emitted the event;
        # the sweep (outgoing_deliveries_resume) sends what was never queued.
        transaction.on_commit(
            partial(tasks.outgoing_webhook_deliver.delay, delivery_id=delivery.pk), robust=True
        )
    return event


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to log, not followed: urllib would resend a POST as a GET."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes, signature: str) -> tuple[int | None, str]:
    request = urllib.request.Request(  # noqa: S310 - the business's own endpoint URL
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "BillingPortal-Webhooks/1",
            SIGNATURE_HEADER: signature,
        },
    )
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        return None, f"{type(reason).__name__}: {reason}"[:500]


def outgoing_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> int | None:
    """POST a pending delivery once and log the attempt. Returns the seconds until the next
    attempt, or None when there is none (delivered, given up, or another worker has this
    attempt). Never called inside a transaction: the POST may take TIMEOUT_SECONDS."""
    delivery = Delivery.objects.select_related("event", "endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != Delivery.Status.PENDING:
        return None
    # Claim this attempt: of two workers (a retry and the sweep), one sends it.
    claimed = Delivery.objects.filter(
        pk=delivery.pk, status=Delivery.Status.PENDING, attempts=delivery.attempts
    ).update(attempts=F("attempts") + 1)
    if not claimed:
        return None
    number = delivery.attempts + 1
    now = now or timezone.now()
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        status_code, error, elapsed = None, "Endpoint disabled", 0
    else:
        body = event_body(delivery.event)
        signature = signature_header(
            secret=endpoint.secret, body=body, timestamp=int(now.timestamp())
        )
        started = time.monotonic()
        status_code, error = _post(endpoint.url, body, signature)
        elapsed = int((time.monotonic() - started) * 1000)
    Attempt.objects.create(
        delivery=delivery, number=number, attempted_at=now, status_code=status_code,
        error=error, duration_ms=elapsed,
    )  # fmt: skip
    if status_code is not None and 200 <= status_code < 300:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.SUCCEEDED, delivered_at=now, next_attempt_at=None
        )
        return None
    if number > len(RETRY_DELAYS) or not endpoint.is_active:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.GAVE_UP, next_attempt_at=None
        )
        return None
    delay = RETRY_DELAYS[number - 1]
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now + timedelta(seconds=delay))
    return delay


# A retry this late was lost (a worker died, the broker dropped it): the sweep sends it.
OVERDUE = timedelta(minutes=10)


def outgoing_deliveries_resume(*, now: datetime | None = None) -> int:
    """Queue every pending delivery whose retry is overdue, or that was never attempted."""
    from . import tasks

    now = now or timezone.now()
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
    overdue = pending.filter(next_attempt_at__lt=now - OVERDUE) | pending.filter(
        attempts=0, created_at__lt=now - OVERDUE
    )
    ids = list(overdue.values_list("pk", flat=True))
    for delivery_id in ids:
        tasks.outgoing_webhook_deliver.delay(delivery_id=delivery_id)
    return len(ids)


def endpoint_create(
    *, url: str, description: str = "", event_types: list[str] | None = None
) -> Endpoint:
    unknown = set(event_types or []) - set(EventType.values)
    if unknown:
        raise ValueError(f"Unknown event types: {', '.join(sorted(unknown))}")
    return Endpoint.objects.create(url=url, description=description, event_types=event_types or [])
