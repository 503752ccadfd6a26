"""The resource ledger: billable resources (a feature marked `held`) that the business's
services attach to and detach from a customer. Each counts toward the feature's limit
while held; billing reads the ledger to charge for the time held."""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Customer

from .entitlements import FOREVER
from .models import Feature, ResourceEvent, UsageTotal
from .services import UnknownFeature, _usage_total_add

# A service's clock may run a little ahead of ours; further ahead is a mistake.
CLOCK_SKEW = timedelta(minutes=5)


class FeatureNotHeld(ValueError):
    """The feature is not a resource held over time (it is reported as usage, or is on/off)."""


class ResourceConflict(ValueError):
    """The request contradicts the ledger; `code` says how, for the API's answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TimestampInFuture(ValueError):
    def __init__(self, latest: datetime) -> None:
        super().__init__(f"later than {latest.isoformat()}")
        self.latest = latest


def held_feature_get(*, key: str) -> Feature:
    try:
        feature = Feature.objects.get(key=key, is_active=True)
    except Feature.DoesNotExist:
        raise UnknownFeature(key) from None
    if not feature.held:
        raise FeatureNotHeld(key)
    return feature


@transaction.atomic
def resource_record(
    *,
    customer: Customer,
    feature: str,
    resource_id: str,
    action: str,
    idempotency_key: str,
    occurred_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[ResourceEvent, bool]:
    """Attach or detach a resource once per idempotency key; it counts toward the limit at
    once. A repeat of the same request returns the first record (`created` False); the same
    key for a different request, attaching what is attached, detaching what is not, or going
    back in time before the resource's last change is a ResourceConflict."""
    now = now or timezone.now()
    occurred_at = occurred_at or now
    if occurred_at > now + CLOCK_SKEW:
        raise TimestampInFuture(now + CLOCK_SKEW)
    held = held_feature_get(key=feature)
    # One writer per customer at a time: the resource's state is read, then appended to.
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    first = ResourceEvent.objects.filter(customer=customer, idempotency_key=idempotency_key)
    if first := first.select_related("feature").first():
        if (first.feature_id, first.resource_id, first.action) != (held.pk, resource_id, action):
            raise ResourceConflict(
                "idempotency_key_reused",
                "This idempotency key was used for another request.",
            )
        return first, False

    last = (
        ResourceEvent.objects.filter(customer=customer, feature=held, resource_id=resource_id)
        .order_by("-occurred_at", "-id")
        .first()
    )
    is_held = last is not None and last.action == ResourceEvent.Action.ATTACH
    if action == ResourceEvent.Action.ATTACH and is_held:
        raise ResourceConflict(
            "resource_already_attached", f"{resource_id} is attached already; detach it first."
        )
    if action == ResourceEvent.Action.DETACH and not is_held:
        raise ResourceConflict("resource_not_attached", f"{resource_id} is not attached.")
    if last is not None and occurred_at < last.occurred_at:
        raise ResourceConflict(
            "out_of_order",
            f"{resource_id} last changed at {last.occurred_at.isoformat()}, after this timestamp.",
        )
    try:
        with transaction.atomic():
            event = ResourceEvent.objects.create(
                customer=customer,
                feature=held,
                resource_id=resource_id,
                action=action,
                idempotency_key=idempotency_key,
                occurred_at=occurred_at,
            )
    except IntegrityError:  # unreachable under the customer lock, kept as the last guard
        raise ResourceConflict("idempotency_key_reused", "This key was just used.") from None
    if action == ResourceEvent.Action.ATTACH:
        _usage_total_add(customer, held, FOREVER, 1)
    else:
        UsageTotal.objects.filter(customer=customer, feature=held, period_start=FOREVER).update(
            used=F("used") - 1
        )
    return event, True
