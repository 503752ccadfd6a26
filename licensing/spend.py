"""Spend caps and usage alerts: what a customer's metered use costs in the billing cycle,
against the caps they set. A stop cap bounds a feature's use for check-access (the most
that may be used before the cost passes the cap); every threshold crossed is told once per
cycle, by email and as a `spend_cap.crossed` outgoing webhook.

The cost of use follows the invoice's rule (billing.rating.usage_rate, tested equal): use
beyond the included units, per started block of `per`, never beyond the hard limit. The
invoice total is the plan's price plus its metered use; resources held are billed by the
time held and are not counted here."""

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from math import ceil

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Customer
from outgoing.models import EventType
from outgoing.services import outgoing_webhook_emit

from .entitlements import Standing, customer_standing, usage_period
from .models import CustomerPlan, Plan, PlanFeature, SpendCap, SpendCapCrossing, UsageTotal


def use_cost(*, used: int, priced: PlanFeature) -> int:
    """Minor units `used` units of a priced feature cost in a cycle."""
    capped = used if priced.limit is None else min(used, priced.limit)
    billable = max(0, capped - priced.included)
    return ceil(billable / priced.per) * priced.unit_amount if billable else 0


def use_within(*, budget: int, priced: PlanFeature) -> int | None:
    """The most units whose cost stays within `budget` (None: no bound, it costs nothing);
    -1 when the budget is already spent, so that nothing more is allowed."""
    if not priced.unit_amount:
        return None
    if budget < 0:
        return -1
    return priced.included + (budget // priced.unit_amount) * priced.per


@dataclass
class Spend:
    """A customer's cycle: the paid plan, its priced metered features with their committed
    use, and the caps."""

    plan: Plan
    cycle_start: datetime
    priced: dict[int, PlanFeature]
    used: dict[int, int]
    caps: list[SpendCap]

    def feature_cost(self, feature_id: int) -> int:
        priced = self.priced.get(feature_id)
        return use_cost(used=self.used.get(feature_id, 0), priced=priced) if priced else 0

    @property
    def total(self) -> int:
        return (self.plan.amount or 0) + sum(self.feature_cost(f) for f in self.priced)

    def of(self, cap: SpendCap) -> int:
        return self.feature_cost(cap.feature_id) if cap.feature_id else self.total

    def stop_bound(self, feature_id: int) -> int | None:
        """The most committed use of the feature the stop caps allow (None: no bound)."""
        priced = self.priced.get(feature_id)
        if priced is None:
            return None
        bounds = []
        for cap in self.caps:
            if cap.mode != SpendCap.Mode.STOP or cap.feature_id not in (None, feature_id):
                continue
            # What the cap leaves for this feature's use: all of it for a feature cap; for
            # the invoice's, what the plan and the other features have not taken.
            others = 0 if cap.feature_id else self.total - self.feature_cost(feature_id)
            bound = use_within(budget=cap.amount - others, priced=priced)
            if bound is not None:
                bounds.append(bound)
        return min(bounds) if bounds else None


def spend_read(
    *, customer_id: str, standing: Standing, now: datetime, caps: list[SpendCap] | None = None
) -> Spend | None:
    """The cycle's spend, or None without caps or a priced paid plan (nothing is billed
    then). Four queries at most: caps, plan, priced features, totals."""
    if caps is None:
        caps = list(SpendCap.objects.filter(customer_id=customer_id))
    if not caps or standing.period is None or standing.plan_code is None:
        return None
    plan = Plan.objects.filter(code=standing.plan_code, amount__isnull=False).first()
    if plan is None:
        return None
    priced = {
        pf.feature_id: pf
        for pf in PlanFeature.objects.filter(
            plan=plan, unit_amount__isnull=False, feature__kind="metered", feature__held=False
        )
    }
    periods = {fid: usage_period(standing, pf.reset, now)[0] for fid, pf in priced.items()}
    used = {}
    if periods:
        used = {
            fid: n
            for fid, start, n in UsageTotal.objects.filter(
                customer_id=customer_id,
                feature_id__in=periods,
                period_start__in=set(periods.values()),
            ).values_list("feature_id", "period_start", "used")
            if periods.get(fid) == start
        }
    return Spend(plan=plan, cycle_start=standing.period[0], priced=priced, used=used, caps=caps)


def stop_bound_for(*, customer_id: str, standing: Standing, feature_id: int, now: datetime):
    """check-access's question, for a customer with stop caps: how much of the feature may
    be used in all (None: the caps do not bound it)."""
    caps = list(SpendCap.objects.filter(customer_id=customer_id, mode=SpendCap.Mode.STOP))
    spend = spend_read(customer_id=customer_id, standing=standing, now=now, caps=caps)
    return spend.stop_bound(feature_id) if spend else None


def spend_caps_check(*, customer_id: str, now: datetime | None = None) -> list[SpendCapCrossing]:
    """Record each threshold the cycle's spend has reached and was not told yet, and tell
    it (email and webhook, after the commit). Called after use is recorded and when a cap
    is set; one query for a customer without caps. Returns the new crossings."""
    now = now or timezone.now()
    caps = list(SpendCap.objects.filter(customer_id=customer_id).select_related("feature"))
    if not caps:
        return []
    customer = Customer.objects.select_related("plan__plan").get(pk=customer_id)
    spend = spend_read(
        customer_id=customer.customer_id, standing=customer_standing(customer, now), now=now,
        caps=caps,
    )  # fmt: skip
    if spend is None:
        return []
    from . import tasks

    crossed = []
    for cap in caps:
        cost = spend.of(cap)
        for threshold in sorted(set(cap.thresholds)):
            if cost * 100 < threshold * cap.amount:
                continue
            try:
                with transaction.atomic():
                    crossing = SpendCapCrossing.objects.create(
                        cap=cap, threshold=threshold, period_start=spend.cycle_start,
                        spend=cost, crossed_at=now,
                    )  # fmt: skip
            except IntegrityError:
                continue  # told already this cycle
            crossed.append(crossing)
            outgoing_webhook_emit(
                customer=customer,
                type=EventType.SPEND_CAP_CROSSED,
                data={
                    "cap_id": cap.pk,
                    "feature": cap.feature.key if cap.feature_id else None,
                    "scope": "feature" if cap.feature_id else "invoice_total",
                    "mode": cap.mode,
                    "threshold_percent": threshold,
                    "cap_amount": cap.amount,
                    "spend": cost,
                    "currency": spend.plan.currency,
                    "cycle_start": spend.cycle_start.isoformat(),
                },
            )
            transaction.on_commit(
                partial(tasks.spend_cap_email_send.delay, crossing_id=crossing.pk)
            )
    return crossed


class SpendCapInvalid(ValueError):
    pass


@transaction.atomic
def spend_cap_set(
    *,
    customer: Customer,
    feature: str | None,
    amount: int,
    thresholds: list[int],
    mode: str,
    now: datetime | None = None,
) -> SpendCap:
    """Set the customer's cap on a feature (None: on the invoice total). It acts at once:
    a stop cap below the current spend refuses use from now, and thresholds already
    reached are told now."""
    if amount <= 0 or any(not 1 <= t <= 100 for t in thresholds) or mode not in SpendCap.Mode:
        raise SpendCapInvalid("A cap is a positive amount with thresholds of 1 to 100 %.")
    feature_id = None
    if feature:
        priced = PlanFeature.objects.filter(
            feature__key=feature, feature__kind="metered", unit_amount__isnull=False
        ).values_list("feature_id", flat=True)
        feature_id = priced.first()
        if feature_id is None:
            raise SpendCapInvalid(f"{feature} is not a priced metered feature.")
    with transaction.atomic():
        _customer_lock(customer.customer_id)
        cap, _created = SpendCap.objects.update_or_create(
            customer=customer,
            feature_id=feature_id,
            defaults={"amount": amount, "thresholds": sorted(set(thresholds)), "mode": mode},
        )
    spend_caps_check(customer_id=customer.customer_id, now=now)
    return cap


@transaction.atomic
def spend_cap_remove(*, customer: Customer, cap_id: int) -> bool:
    _customer_lock(customer.customer_id)
    return SpendCap.objects.filter(customer=customer, pk=cap_id).delete()[0] > 0


def _customer_lock(customer_id: str) -> None:
    """The customer's row, locked first: a cap's change writes it too (its standing
    version), and every other per-customer writer takes this lock before its own rows."""
    Customer.objects.select_for_update().filter(pk=customer_id).first()


def spend_caps_of(*, customer: Customer, now: datetime | None = None) -> list[dict]:
    """The customer's caps with what the cycle has spent against each, for the usage page."""
    now = now or timezone.now()
    caps = list(SpendCap.objects.filter(customer=customer).select_related("feature"))
    spend = spend_read(
        customer_id=customer.customer_id, standing=customer_standing(customer, now), now=now,
        caps=caps,
    ) if caps else None  # fmt: skip
    currency = spend.plan.currency if spend else _plan_currency(customer)
    return [
        {
            "cap": cap,
            "spent": spend.of(cap) if spend else 0,
            "percent": round(100 * spend.of(cap) / cap.amount) if spend else 0,
            "currency": currency,
        }
        for cap in caps
    ]


def _plan_currency(customer: Customer) -> str:
    paid = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
    return paid.plan.currency if paid else ""
