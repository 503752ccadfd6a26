"""Reads for pages and API answers: a customer's use against their plan, and whether use
is billed at all. Local state only."""

from dataclasses import dataclass
from datetime import datetime

from accounts.models import Customer

from .entitlements import Decision, customer_standing, decision_from, plan_limits, usage_period
from .models import CustomerPlan, Feature, PlanFeature, SpendCap, UsageTotal


class NotBilled:
    """Why reported use lands on no invoice (it still counts toward limits)."""

    NO_PAID_PLAN = "no_paid_plan"
    NOT_PRICED = "included_in_plan"


def paid_plan(customer: Customer) -> CustomerPlan | None:
    """The live paid plan (a Stripe subscription) whose invoices bill use, if any."""
    current = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
    return current if current is not None and current.is_live else None


def usage_not_billed_reason(*, customer: Customer, feature: str) -> str | None:
    """None when use of `feature` is billed on the customer's current invoice; else why not."""
    current = paid_plan(customer)
    if current is None:
        return NotBilled.NO_PAID_PLAN
    priced = PlanFeature.objects.filter(
        plan=current.plan, feature__key=feature, unit_amount__isnull=False
    ).exists()
    return None if priced else NotBilled.NOT_PRICED


@dataclass(frozen=True)
class FeatureUse:
    key: str
    name: str
    unit: str
    held: bool
    used: int
    included: int
    limit: int | None
    resets_at: datetime | None
    priced: bool

    @property
    def bar_percent(self) -> int:
        """How full the bar is: used against the limit, or against what is included."""
        ceiling = self.limit or self.included
        if not ceiling:
            return 0
        return min(100, round(100 * self.used / ceiling))

    @property
    def beyond_included(self) -> int:
        return max(0, self.used - self.included) if self.priced else 0


def customer_feature_use(*, customer: Customer, now: datetime) -> list[FeatureUse]:
    """Each metered feature of the customer's plan (paid or trial): used, included, limit.
    Two queries whatever the number of features."""
    standing = customer_standing(customer, now)
    limits = list(
        PlanFeature.objects.select_related("feature")
        .filter(plan__code=standing.plan_code, feature__kind="metered")
        .order_by("feature__key")
    )
    periods = {pf.feature_id: usage_period(standing, pf.reset, now) for pf in limits}
    used = {}
    if limits:
        starts = {start for start, _resets_at in periods.values()}
        totals = UsageTotal.objects.filter(
            customer=customer, feature_id__in=periods, period_start__in=starts
        ).values_list("feature_id", "period_start", "used")
        used = {(feature_id, start): n for feature_id, start, n in totals}
    return [
        FeatureUse(
            key=pf.feature.key,
            name=pf.feature.name,
            unit=pf.feature.unit,
            held=pf.feature.held,
            used=used.get((pf.feature_id, periods[pf.feature_id][0]), 0),
            included=pf.included,
            limit=pf.limit,
            resets_at=periods[pf.feature_id][1],
            priced=pf.unit_amount is not None,
        )
        for pf in limits
    ]


@dataclass(frozen=True)
class FeatureEntitlement:
    """One feature's check-access decision for a customer, as the read APIs show it."""

    feature: str
    kind: str
    decision: Decision


def customers_entitlements(
    *, customers: list[Customer], now: datetime
) -> dict[str, list[FeatureEntitlement]]:
    """Every active feature's check-access decision (with nothing requested) for each
    customer, by customer id: two queries whatever the number of customers and features.
    `customers` come with `plan__plan` selected, so their standing costs no query."""
    features = list(Feature.objects.filter(is_active=True).order_by("key"))
    standings = {c.customer_id: customer_standing(c, now) for c in customers}
    starts = set()
    for standing in standings.values():
        for feature in features:
            limits = plan_limits(standing.plan_code, feature.key) if standing.plan_code else None
            if limits is not None and limits.metered:
                starts.add(usage_period(standing, limits.reset, now)[0])
    totals = {}
    if starts:
        totals = {
            (customer_id, feature_id, start): used
            for customer_id, feature_id, start, used in UsageTotal.objects.filter(
                customer_id__in=standings, period_start__in=starts
            ).values_list("customer_id", "feature_id", "period_start", "used")
        }
    # Customers with a stop spend cap are decided with it, as check-access does (a few
    # queries for each of them; none for the others).
    stop_caps: dict[str, list[SpendCap]] = {}
    for cap in SpendCap.objects.filter(customer_id__in=standings, mode=SpendCap.Mode.STOP):
        stop_caps.setdefault(cap.customer_id, []).append(cap)
    result = {}
    for customer_id, standing in standings.items():

        def period_used(feature_id: int, start: datetime, customer_id=customer_id) -> int:
            return totals.get((customer_id, feature_id, start), 0)

        spend_bound = None
        if customer_id in stop_caps:
            from .spend import spend_read

            spend = spend_read(
                customer_id=customer_id, standing=standing, now=now, caps=stop_caps[customer_id]
            )
            spend_bound = spend and spend.stop_bound

        result[customer_id] = [
            FeatureEntitlement(
                feature=feature.key,
                kind=feature.kind,
                decision=decision_from(
                    standing=standing,
                    feature=feature.key,
                    requested_usage=0,
                    period_used=period_used,
                    now=now,
                    spend_bound=spend_bound,
                ),
            )
            for feature in features
        ]
    return result
