"""What a customer may use now, decided from local state only (no Stripe call): their plan
projection or free trial, the catalog's limits, and the usage totals of the period."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from accounts.models import Customer

from .models import CustomerPlan, PlanFeature, UsageTotal

TRIAL_PLAN_CODE = "trial"
# Usage of a feature that never resets counts in one period that began long ago.
FOREVER = datetime(1970, 1, 1, tzinfo=UTC)


class Reason:
    OK = "ok"
    CUSTOMER_NOT_FOUND = "customer_not_found"
    NO_ACTIVE_PLAN = "no_active_plan"
    TRIAL_EXPIRED = "trial_expired"
    PAST_DUE = "past_due"
    FEATURE_NOT_IN_PLAN = "feature_not_in_plan"
    USAGE_LIMIT_EXCEEDED = "usage_limit_exceeded"


@dataclass(frozen=True)
class Standing:
    """The plan a customer's features come from, or why there is none."""

    plan_code: str | None
    status: str  # trialing (the portal's free trial too), active, past_due, canceled, expired
    period: tuple[datetime, datetime] | None  # the paid period, for monthly resets
    denial: str | None


def customer_standing(customer: Customer, now: datetime | None = None) -> Standing:
    now = now or timezone.now()
    try:
        paid: CustomerPlan | None = customer.plan
    except CustomerPlan.DoesNotExist:
        paid = None
    if paid is not None and paid.status in {paid.Status.TRIALING, paid.Status.ACTIVE}:
        period = None
        if paid.current_period_start and paid.current_period_end:
            period = (paid.current_period_start, paid.current_period_end)
        return Standing(paid.plan.code, paid.status, period, None)
    if paid is not None and paid.status == paid.Status.PAST_DUE:
        return Standing(paid.plan.code, paid.status, None, Reason.PAST_DUE)
    if customer.is_trialing(now):
        return Standing(TRIAL_PLAN_CODE, "trialing", None, None)
    if paid is not None:
        return Standing(None, paid.status, None, Reason.NO_ACTIVE_PLAN)
    return Standing(None, "expired", None, Reason.TRIAL_EXPIRED)


def usage_period(standing: Standing, reset: str, at: datetime) -> tuple[datetime, datetime | None]:
    """(start, resets_at) of the period usage at `at` counts in: the paid period for a
    monthly reset on a paid plan, the calendar month (UTC) otherwise, or forever."""
    if reset == PlanFeature.Reset.NEVER:
        return FOREVER, None
    if standing.period and standing.period[0] <= at < standing.period[1]:
        return standing.period
    month_start = at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if month_start.month == 12:
        return month_start, month_start.replace(year=month_start.year + 1, month=1)
    return month_start, month_start.replace(month=month_start.month + 1)


@dataclass(frozen=True)
class Decision:
    has_access: bool
    reason: str
    plan: str | None
    used: int | None = None
    limit: int | None = None
    resets_at: datetime | None = None
    soft_limit: int | None = None

    @property
    def remaining(self) -> int | None:
        if self.limit is None or self.used is None:
            return None
        return max(0, self.limit - self.used)

    @property
    def soft_limit_exceeded(self) -> bool:
        return self.soft_limit is not None and (self.used or 0) > self.soft_limit


def check_access(*, customer_id: str, feature: str, requested_usage: int = 0) -> Decision:
    """May this customer use `feature` for `requested_usage` more units? Three queries at
    most: the customer with their plan, the plan's limits for the feature, the period total."""
    customer = Customer.objects.select_related("plan__plan").filter(pk=customer_id).first()
    if customer is None:
        return Decision(False, Reason.CUSTOMER_NOT_FOUND, None)
    now = timezone.now()
    standing = customer_standing(customer, now)
    if standing.denial:
        return Decision(False, standing.denial, standing.plan_code)
    limits = (
        PlanFeature.objects.select_related("feature")
        .filter(plan__code=standing.plan_code, feature__key=feature)
        .first()
    )
    if limits is None:
        return Decision(False, Reason.FEATURE_NOT_IN_PLAN, standing.plan_code)
    if limits.feature.kind != limits.feature.Kind.METERED:
        return Decision(True, Reason.OK, standing.plan_code)

    start, resets_at = usage_period(standing, limits.reset, now)
    used = (
        UsageTotal.objects.filter(customer=customer, feature=limits.feature, period_start=start)
        .values_list("used", flat=True)
        .first()
        or 0
    )
    allowed = limits.limit is None or used + requested_usage <= limits.limit
    return Decision(
        has_access=allowed,
        reason=Reason.OK if allowed else Reason.USAGE_LIMIT_EXCEEDED,
        plan=standing.plan_code,
        used=used,
        limit=limits.limit,
        resets_at=resets_at,
        soft_limit=limits.soft_limit,
    )
