"""Check and consume in one step: a use of a metered feature is recorded only if access is
granted, and the running total never passes the limit, whatever the concurrency.

The guard is one conditional UPDATE of the period's running total (`used + n <= limit`):
PostgreSQL re-checks its condition on the row it waits for, and SQLite runs one writer at
a time, so no interleaving of callers can push the total past the limit. A repeat of the
idempotency key answers what the first call answered."""

from dataclasses import asdict, replace
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Customer

from .entitlements import Decision, Reason, check_access
from .models import UsageConsumption, UsageEvent, UsageTotal

DATETIME_FIELDS = ("resets_at", "grace_ends_at")


class ConsumeKeyReused(ValueError):
    """The idempotency key names an earlier request (or usage report) that said otherwise."""


class FeatureNotConsumable(ValueError):
    """Access was granted, but the feature is on/off or held: there is no use to record."""


def _decision_json(decision: Decision) -> dict:
    data = {k: v for k, v in asdict(decision).items() if k not in ("feature_id", "period_start")}
    for name in DATETIME_FIELDS:
        data[name] = data[name] and data[name].isoformat()
    return data


def _decision_from_json(data: dict) -> Decision:
    values = dict(data)
    for name in DATETIME_FIELDS:
        values[name] = values[name] and parse_datetime(values[name])
    return Decision(**values)


def _used(customer_id: str, feature_id: int, period_start: datetime) -> int:
    return (
        UsageTotal.objects.filter(
            customer_id=customer_id, feature_id=feature_id, period_start=period_start
        )
        .values_list("used", flat=True)
        .first()
        or 0
    )


def usage_consume(
    *, customer_id: str, feature: str, quantity: int, idempotency_key: str
) -> tuple[Decision, bool]:
    """check-access for `quantity` more units of `feature`, recording the use if granted.
    Returns (the decision, whether this call made it: False for a repeat of the key). A
    granted decision's `used` includes this use. Raises ConsumeKeyReused for a key that
    names something else, FeatureNotConsumable for a feature with no use to count."""
    decision = check_access(customer_id=customer_id, feature=feature, requested_usage=quantity)
    if decision.reason == Reason.CUSTOMER_NOT_FOUND:
        return decision, True  # nothing to record it against
    if decision.has_access and decision.feature_id is None:
        raise FeatureNotConsumable(feature)
    with transaction.atomic():
        try:
            with transaction.atomic():
                # First, so that a concurrent call with the same key waits here for this
                # one's answer instead of deciding again.
                claim = UsageConsumption.objects.create(
                    idempotency_key=idempotency_key,
                    customer_id=customer_id,
                    feature_key=feature,
                    quantity=quantity,
                )
        except IntegrityError:
            first = UsageConsumption.objects.get(idempotency_key=idempotency_key)
            if (first.customer_id, first.feature_key, first.quantity) != (
                customer_id, feature, quantity,
            ):  # fmt: skip
                raise ConsumeKeyReused(idempotency_key) from None
            return _decision_from_json(first.decision), False
        if UsageEvent.objects.filter(idempotency_key=idempotency_key).exists():
            raise ConsumeKeyReused(idempotency_key)  # a usage report has it already

        if decision.cap_bound is not None:
            # A stop cap on the invoice total depends on every feature's use: one consume
            # of this customer at a time, deciding again under the lock.
            Customer.objects.select_for_update().filter(pk=customer_id).first()
            decision = check_access(
                customer_id=customer_id, feature=feature, requested_usage=quantity
            )
        event = None
        if decision.has_access:
            decision, event = _consume(decision, customer_id, quantity, idempotency_key)
        claim.granted = decision.has_access
        claim.decision = _decision_json(decision)
        claim.usage_event = event
        claim.save(update_fields=["granted", "decision", "usage_event"])
        if event is not None:
            from .spend import spend_caps_check

            spend_caps_check(customer_id=customer_id)
    return decision, True


def _consume(decision: Decision, customer_id: str, quantity: int, idempotency_key: str):
    """Add `quantity` to the period's total if it stays within the limit; record the use."""
    where = {
        "customer_id": customer_id,
        "feature_id": decision.feature_id,
        "period_start": decision.period_start,
    }
    # The row must exist for the conditional update to have something to hold.
    UsageTotal.objects.bulk_create([UsageTotal(**where, used=0)], ignore_conflicts=True)
    totals = UsageTotal.objects.filter(**where)
    bounds = [b for b in (decision.limit, decision.cap_bound) if b is not None]
    if bounds:
        totals = totals.filter(used__lte=min(bounds) - quantity)
    if not totals.update(used=F("used") + quantity):
        used = _used(customer_id, decision.feature_id, decision.period_start)
        over_limit = decision.limit is not None and used + quantity > decision.limit
        reason = Reason.USAGE_LIMIT_EXCEEDED if over_limit else Reason.SPEND_CAP_REACHED
        return replace(decision, has_access=False, reason=reason, used=used), None
    try:
        with transaction.atomic():
            event = UsageEvent.objects.create(
                customer_id=customer_id,
                feature_id=decision.feature_id,
                quantity=quantity,
                idempotency_key=idempotency_key,
                occurred_at=timezone.now(),
                period_start=decision.period_start,
            )
    except IntegrityError:  # a usage report took the key just now; the total rolls back
        raise ConsumeKeyReused(idempotency_key) from None
    used = _used(customer_id, decision.feature_id, decision.period_start)
    return replace(decision, used=used), event
