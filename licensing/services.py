"""Writes for licensing: loading the catalog, and each customer's plan projection."""

from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Customer, Membership
from accounts.services import customer_signup
from audit.ledger import Source, entry_record
from outgoing.models import EventType
from outgoing.services import outgoing_webhook_emit

from .catalog import Catalog
from .entitlements import (
    Standing,
    customer_standing,
    limits_cache_clear,
    past_due_grace_ends_at,
    usage_period,
    usage_previous_period_start,
)
from .licenses import license_refresh
from .models import CustomerPlan, Feature, Plan, PlanFeature, UsageEvent, UsageTotal


@transaction.atomic
def catalog_load(*, catalog: Catalog, price_ids: dict[str, str] | None = None) -> None:
    """Make the Plan, Feature and PlanFeature tables say what the catalog says. Plans and
    features gone from it are kept, inactive: customers and licenses may still name them.
    `price_ids` (plan code → Stripe price id) records what a push to Stripe made current;
    plans it does not name keep the price they had."""
    price_ids = price_ids or {}
    features = {}
    for spec in catalog.features:
        features[spec.key], _ = Feature.objects.update_or_create(
            key=spec.key,
            defaults={
                "name": spec.name,
                "kind": spec.kind,
                "unit": spec.unit,
                "held": spec.held,
                "is_active": True,
            },
        )
    Feature.objects.exclude(key__in=features).update(is_active=False)

    codes = []
    for position, spec in enumerate(catalog.plans):
        plan, _ = Plan.objects.update_or_create(
            code=spec.code,
            defaults={
                "name": spec.name,
                "amount": spec.amount,
                "currency": spec.currency,
                "lookup_key": spec.lookup_key,
                "trial_allowed": spec.trial_allowed,
                "is_active": True,
                "position": position,
                **({"stripe_price_id": price_ids[spec.code]} if spec.code in price_ids else {}),
            },
        )
        codes.append(spec.code)
        keep = []
        for limits in spec.features:
            PlanFeature.objects.update_or_create(
                plan=plan,
                feature=features[limits.feature],
                defaults={
                    "limit": limits.limit,
                    "reset": limits.reset,
                    "soft_limit": limits.soft_limit,
                    "included": limits.included,
                    "unit_amount": limits.unit_amount,
                    "per": limits.per,
                },
            )
            keep.append(limits.feature)
        plan.plan_features.exclude(feature__key__in=keep).delete()
    Plan.objects.exclude(code__in=codes).update(is_active=False)
    transaction.on_commit(limits_cache_clear)


class Transition(StrEnum):
    """What changed in a customer's plan; each is told to the customer once."""

    ACTIVATED = "plan_activated"
    CHANGED = "plan_changed"
    CANCELLATION_SCHEDULED = "cancellation_scheduled"
    CANCELLATION_WITHDRAWN = "cancellation_withdrawn"
    ENDED = "subscription_ended"


LIVE_STATUSES = [
    CustomerPlan.Status.TRIALING,
    CustomerPlan.Status.ACTIVE,
    CustomerPlan.Status.PAST_DUE,
]

# Transitions the customer hears about by email.
EMAILED = {
    Transition.ACTIVATED,
    Transition.CHANGED,
    Transition.CANCELLATION_SCHEDULED,
    Transition.ENDED,
}


@transaction.atomic
def customer_plan_apply(
    *,
    customer: Customer,
    plan: Plan,
    status: str,
    current_period_start: datetime | None,
    current_period_end: datetime | None,
    cancel_at_period_end: bool,
    subscription_id: str,
    change_details: dict | None = None,
) -> list[Transition]:
    """Make the customer's plan say what their subscription says now, and return what
    changed. Applying the same state twice changes nothing, so duplicate webhooks are
    harmless; a late event of an older subscription never overrides a live newer one.
    `change_details` (what a plan change charged or credited) goes to its email."""
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    current = CustomerPlan.objects.filter(customer=customer).first()
    past_due_since = None
    if status == CustomerPlan.Status.PAST_DUE:
        # The grace runs from the first failure this projection saw, not from each retry.
        kept = current and current.status == CustomerPlan.Status.PAST_DUE
        past_due_since = (current.past_due_since if kept else None) or timezone.now()
    new = CustomerPlan(
        customer=customer,
        plan=plan,
        status=status,
        current_period_start=current_period_start,
        current_period_end=current_period_end,
        cancel_at_period_end=cancel_at_period_end,
        subscription_id=subscription_id,
        past_due_since=past_due_since,
    )
    if (
        current
        and current.subscription_id != subscription_id
        and current.is_live
        and (not new.is_live)
    ):
        return []

    transitions = []
    was_live = bool(current and current.is_live)
    if new.is_live and not was_live:
        transitions.append(Transition.ACTIVATED)
    elif was_live and not new.is_live:
        transitions.append(Transition.ENDED)
    elif was_live and new.is_live:
        if current.plan_id != plan.pk:
            transitions.append(Transition.CHANGED)
        if cancel_at_period_end and not current.cancel_at_period_end:
            transitions.append(Transition.CANCELLATION_SCHEDULED)
        if current.cancel_at_period_end and not cancel_at_period_end:
            transitions.append(Transition.CANCELLATION_WITHDRAWN)
    new.save()
    license_refresh(customer=customer)
    if status == CustomerPlan.Status.PAST_DUE and not (
        current and current.status == CustomerPlan.Status.PAST_DUE
    ):
        outgoing_webhook_emit(
            customer=customer,
            type=EventType.PAYMENT_FAILED,
            data={
                "subscription_id": subscription_id,
                "plan": plan.code,
                "past_due_since": past_due_since.isoformat(),
                "grace_ends_at": past_due_grace_ends_at(past_due_since).isoformat(),
            },
        )

    from . import tasks

    # What the plan was before, so a change's email can say upgrade or downgrade, and
    # whether the switch ended a trial.
    before = (
        {"previous_plan_code": current.plan.code, "previous_status": current.status}
        if current is not None
        else {}
    )
    for transition in transitions:
        if transition in EMAILED:
            transaction.on_commit(
                partial(
                    tasks.plan_email_send.delay,
                    customer_id=customer.customer_id,
                    template=str(transition),
                    plan_code=plan.code,
                    **(
                        {**before, "details": change_details or {}}
                        if transition == Transition.CHANGED
                        else {}
                    ),
                )
            )
    return transitions


TRIAL_REMINDER_AHEAD = timedelta(days=3)


def trial_ending_reminders_send(*, now: datetime | None = None) -> int:
    """Email customers whose free trial ends within three days and who have no plan yet,
    once each: the claim on `trial_reminder_sent_at` is atomic, so overlapping runs of
    the beat job cannot send twice. Returns how many were sent."""
    from . import tasks

    now = now or timezone.now()
    due = (
        Customer.objects.filter(
            trial_ends_at__gt=now,
            trial_ends_at__lte=now + TRIAL_REMINDER_AHEAD,
            trial_reminder_sent_at__isnull=True,
        )
        .exclude(plan__status__in=LIVE_STATUSES)
        .values_list("pk", flat=True)
    )
    sent = 0
    for customer_id in list(due):
        with transaction.atomic():
            claimed = Customer.objects.filter(
                pk=customer_id, trial_reminder_sent_at__isnull=True
            ).update(trial_reminder_sent_at=now)
            if claimed:
                transaction.on_commit(
                    partial(tasks.trial_ending_email_send.delay, customer_id=customer_id)
                )
                sent += 1
    return sent


# --- Usage ------------------------------------------------------------------------------------


class UnknownFeature(ValueError):
    pass


class FeatureNotMetered(ValueError):
    pass


class UsageTimestampOutOfRange(ValueError):
    """A report of use at a time no period anyone sees counts it in."""

    def __init__(self, occurred_at: datetime, earliest: datetime, latest: datetime):
        super().__init__(occurred_at)
        self.occurred_at, self.earliest, self.latest = occurred_at, earliest, latest

    @property
    def too_early(self) -> bool:
        return self.occurred_at < self.earliest


class IdempotencyKeyReused(ValueError):
    """The key names an earlier report that said something else."""

    def __init__(self, first: UsageEvent):
        super().__init__(first.idempotency_key)
        self.first = first


# How far ahead of our clock a service's clock may be.
USAGE_CLOCK_SKEW = timedelta(minutes=5)


def _usage_reset(plan_code: str | None, feature: Feature) -> str:
    return (
        PlanFeature.objects.filter(plan__code=plan_code, feature=feature)
        .values_list("reset", flat=True)
        .first()
        or PlanFeature.Reset.MONTHLY
    )


def _usage_earliest(customer: Customer, standing: Standing, reset: str, now: datetime) -> datetime:
    """The earliest time a use may be reported for: the start of the previous period, so
    a late report still counts where the customer sees it; for a feature that never
    resets, when the account was made."""
    start = usage_previous_period_start(standing, reset, now)
    return start if start is not None else customer.created_at - USAGE_CLOCK_SKEW


def _same_report(event: UsageEvent, *, customer, feature, quantity, occurred_at) -> bool:
    """Whether a repeat says what the first report said (a repeat that names no time
    means the time of the first)."""
    return (
        event.customer_id == customer.pk
        and event.feature_id == feature.pk
        and event.quantity == quantity
        and (occurred_at is None or event.occurred_at == occurred_at)
    )


@transaction.atomic
def usage_record(
    *,
    customer: Customer,
    feature: str,
    quantity: int,
    idempotency_key: str,
    occurred_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[UsageEvent, bool]:
    """Record a use once per idempotency key, counted toward the limit at once. A repeat
    that says the same returns the first record and counts nothing (`created` False); one
    that says something else raises IdempotencyKeyReused. `occurred_at` must lie between
    the start of the previous period and a few minutes from now."""
    try:
        metered = Feature.objects.get(key=feature, is_active=True)
    except Feature.DoesNotExist:
        raise UnknownFeature(feature) from None
    if metered.kind != Feature.Kind.METERED:
        raise FeatureNotMetered(feature)
    report = {
        "customer": customer, "feature": metered, "quantity": quantity,
        "occurred_at": occurred_at,
    }  # fmt: skip
    # Keys are unique across customers: a service's key names one report, whoever's it is.
    existing = UsageEvent.objects.filter(idempotency_key=idempotency_key)
    if first := existing.first():
        if not _same_report(first, **report):
            raise IdempotencyKeyReused(first)
        return first, False

    now = now or timezone.now()
    at = occurred_at or now
    standing = customer_standing(customer, now)
    reset = _usage_reset(standing.plan_code, metered)
    earliest, latest = _usage_earliest(customer, standing, reset, now), now + USAGE_CLOCK_SKEW
    if not earliest <= at <= latest:
        raise UsageTimestampOutOfRange(at, earliest, latest)
    # A use a little ahead of our clock is the service's clock: it counts now, not in a
    # period that has not begun.
    counted_at = min(at, now)
    if counted_at != now:
        then = customer_standing(customer, counted_at)  # the trial may have run then
        if then.plan_code != standing.plan_code:
            reset = _usage_reset(then.plan_code, metered)
        standing = then
    period_start, _resets_at = usage_period(standing, reset, counted_at)
    try:
        with transaction.atomic():
            event = UsageEvent.objects.create(
                customer=customer,
                feature=metered,
                quantity=quantity,
                idempotency_key=idempotency_key,
                occurred_at=at,
                period_start=period_start,
            )
    except IntegrityError:  # the same key, recorded by a concurrent request just now
        first = existing.get()
        if not _same_report(first, **report):
            raise IdempotencyKeyReused(first) from None
        return first, False
    _usage_total_add(customer, metered, period_start, quantity)
    return event, True


def _usage_total_add(customer, feature, period_start, quantity) -> None:
    totals = UsageTotal.objects.filter(
        customer=customer, feature=feature, period_start=period_start
    )
    if totals.update(used=F("used") + quantity):
        return
    try:
        with transaction.atomic():
            UsageTotal.objects.create(
                customer=customer, feature=feature, period_start=period_start, used=quantity
            )
    except IntegrityError:  # created by a concurrent request: add to it
        totals.update(used=F("used") + quantity)


def customer_start(*, email: str, password: str, company_name: str = "") -> Membership:
    """Sign up, and issue the trial's license at once."""
    with transaction.atomic():
        membership = customer_signup(email=email, password=password, company_name=company_name)
        license_refresh(customer=membership.customer)
    return membership


def customer_trial_set(
    *,
    customer: Customer,
    trial_ends_at: datetime,
    actor: AbstractBaseUser | None = None,
    ledger: bool = True,
) -> None:
    """Move the end of a customer's free trial (support extending it, say): the license
    follows, and the reminder goes out again before the new end. With `actor` (a staff
    member), the ledger names who did it; `ledger=False` when the caller writes the one
    entry itself (a support action, with its reason)."""
    with transaction.atomic():
        customer.trial_ends_at = trial_ends_at
        customer.trial_reminder_sent_at = None
        customer.save(update_fields=["trial_ends_at", "trial_reminder_sent_at"])
        if ledger:
            entry_record(
                customer_id=customer.customer_id,
                kind="trial_moved",
                source=Source.STAFF if actor else Source.SYSTEM,
                sentence=f"Free trial now ends on {trial_ends_at:%-d %B %Y, %H:%M} UTC.",
                actor=actor,
                data={"trial_ends_at": trial_ends_at.isoformat()},
            )
        license_refresh(customer=customer)
