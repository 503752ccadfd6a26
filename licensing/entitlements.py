"""What a customer may use now, decided from local state only (no Stripe call): their plan
projection or free trial, the catalog's limits, and the usage totals of the period."""

import calendar
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Customer

from . import fastsql
from .models import CustomerPlan, Plan, PlanFeature, SpendCap, UsageTotal

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
    SPEND_CAP_REACHED = "spend_cap_reached"
    ACCOUNT_SUSPENDED = "account_suspended"


@dataclass(frozen=True)
class Standing:
    """The plan a customer's features come from, or why there is none."""

    plan_code: str | None
    status: str  # trialing (the portal's free trial too), active, past_due, canceled, expired
    period: tuple[datetime, datetime] | None  # the paid period, for monthly resets
    denial: str | None
    # Past due but still within PAST_DUE_GRACE_DAYS of the first failed payment: the plan's
    # features apply until then, with a warning.
    grace_ends_at: datetime | None = None


def past_due_grace_ends_at(past_due_since: datetime | None) -> datetime | None:
    if past_due_since is None:
        return None
    return past_due_since + timedelta(days=settings.PAST_DUE_GRACE_DAYS)


def customer_standing(customer: Customer, now: datetime | None = None) -> Standing:
    try:
        paid: CustomerPlan | None = customer.plan
    except CustomerPlan.DoesNotExist:
        paid = None
    return standing_from(
        trial_ends_at=customer.trial_ends_at,
        status=paid.status if paid else None,
        plan_code=paid.plan.code if paid else None,
        period_start=paid.current_period_start if paid else None,
        period_end=paid.current_period_end if paid else None,
        past_due_since=paid.past_due_since if paid else None,
        now=now or timezone.now(),
        suspended=customer.suspended_at is not None,
    )


def standing_from(
    *,
    trial_ends_at: datetime,
    status: str | None,
    plan_code: str | None,
    period_start: datetime | None,
    period_end: datetime | None,
    now: datetime,
    past_due_since: datetime | None = None,
    suspended: bool = False,
) -> Standing:
    """The rules, on plain values: a suspended account nothing; a live paid plan (past due:
    only until its grace ends), else the free trial, else why not."""
    if suspended:
        return Standing(None, "suspended", None, Reason.ACCOUNT_SUSPENDED)
    period = (period_start, period_end) if period_start and period_end else None
    if status in {CustomerPlan.Status.TRIALING, CustomerPlan.Status.ACTIVE}:
        return Standing(plan_code, status, period, None)
    if status == CustomerPlan.Status.PAST_DUE:
        grace_ends_at = past_due_grace_ends_at(past_due_since)
        if grace_ends_at is not None and now < grace_ends_at:
            return Standing(plan_code, status, period, None, grace_ends_at)
        return Standing(plan_code, status, None, Reason.PAST_DUE)
    if trial_ends_at > now:
        return Standing(TRIAL_PLAN_CODE, "trialing", None, None)
    if status is not None:
        return Standing(None, status, None, Reason.NO_ACTIVE_PLAN)
    return Standing(None, "expired", None, Reason.TRIAL_EXPIRED)


def _months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` earlier, on the month's last day where it is shorter
    (as Stripe moves a period's start from the 31st)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def usage_period(standing: Standing, reset: str, at: datetime) -> tuple[datetime, datetime | None]:
    """(start, resets_at) of the period usage at `at` counts in: the paid period for a
    monthly reset on a paid plan (or the one before it, which is as many months long), the
    calendar month (UTC) otherwise, or forever."""
    if reset == PlanFeature.Reset.NEVER:
        return FOREVER, None
    if standing.period:
        start, end = standing.period
        if start <= at < end:
            return standing.period
        months = max(1, (end.year - start.year) * 12 + end.month - start.month)
        if (previous := _months_before(start, months)) <= at < start:
            return previous, start
    month_start = _month_start(at)
    if month_start.month == 12:
        return month_start, month_start.replace(year=month_start.year + 1, month=1)
    return month_start, month_start.replace(month=month_start.month + 1)


def usage_previous_period_start(standing: Standing, reset: str, now: datetime) -> datetime | None:
    """Where the period before the current one starts: usage may be reported late by up to
    that much. None for a feature that never resets, whose use counts in one period."""
    if reset == PlanFeature.Reset.NEVER:
        return None
    start, _resets_at = usage_period(standing, reset, now)
    previous, _start = usage_period(standing, reset, start - timedelta(microseconds=1))
    return previous


# check-access's warning while a past-due customer's grace runs.
PAYMENT_PAST_DUE = "payment_past_due"


@dataclass(frozen=True)
class Decision:
    has_access: bool
    reason: str
    plan: str | None
    used: int | None = None
    limit: int | None = None
    resets_at: datetime | None = None
    soft_limit: int | None = None
    grace_ends_at: datetime | None = None
    # Where a granted use of a metered feature would be counted (for check-and-consume);
    # not part of any answer.
    feature_id: int | None = field(default=None, compare=False, repr=False)
    period_start: datetime | None = field(default=None, compare=False, repr=False)
    # The most use a stop spend cap allows in the period (None: no cap bounds it).
    cap_bound: int | None = field(default=None, compare=False, repr=False)

    @property
    def warning(self) -> str | None:
        return PAYMENT_PAST_DUE if self.grace_ends_at is not None else None

    @property
    def remaining(self) -> int | None:
        if self.limit is None or self.used is None:
            return None
        return max(0, self.limit - self.used)

    @property
    def soft_limit_exceeded(self) -> bool:
        return self.soft_limit is not None and (self.used or 0) > self.soft_limit


@dataclass(frozen=True)
class Limits:
    feature_id: int
    metered: bool
    limit: int | None
    reset: str
    soft_limit: int | None


# The catalog's limits, per (plan, feature), read once and again after a minute: the
# catalog changes only when stripe_setup loads it, and check-access is the hot path.
LIMITS_TTL_SECONDS = 60
_limits_cache: dict = {"loaded_at": float("-inf"), "limits": {}, "feature_ids": {}}


def plan_limits(plan_code: str, feature: str) -> Limits | None:
    if time.monotonic() - _limits_cache["loaded_at"] > LIMITS_TTL_SECONDS:
        limits_cache_clear(reload=True)
    return _limits_cache["limits"].get((plan_code, feature))


def feature_id_for(feature: str) -> int | None:
    """The id of a feature of some plan in the catalog, from the limits' cache."""
    if time.monotonic() - _limits_cache["loaded_at"] > LIMITS_TTL_SECONDS:
        limits_cache_clear(reload=True)
    return _limits_cache["feature_ids"].get(feature)


def limits_cache_clear(*, reload: bool = False) -> None:
    limits, feature_ids = {}, {}
    if reload:
        for row in PlanFeature.objects.values_list(
            "plan__code", "feature__key", "feature_id", "feature__kind", "limit", "reset",
            "soft_limit",
        ):  # fmt: skip
            plan_code, key, feature_id, kind, limit, reset, soft_limit = row
            limits[(plan_code, key)] = Limits(
                feature_id, kind == "metered", limit, reset, soft_limit
            )
            feature_ids[key] = feature_id
    _limits_cache.update(
        limits=limits,
        feature_ids=feature_ids,
        loaded_at=time.monotonic() if reload else float("-inf"),
    )


@functools.cache
def _sql(vendor: str) -> tuple[str, str, str]:
    """check-access's queries, written out (once per database vendor): the ORM costs about
    40 times the query itself here (measured by `make bench`), and this is the hot path."""
    # Only table and column names are formatted in, from our own models; values are params.
    q = connection.ops.quote_name
    customer, customer_plan, plan, total, cap = (
        q(model._meta.db_table) for model in (Customer, CustomerPlan, Plan, UsageTotal, SpendCap)
    )
    used_in = f"""(SELECT t.used FROM {total} t WHERE t.customer_id = c.customer_id
                   AND t.feature_id = %s AND t.period_start = {{start}})"""  # noqa: S608
    # A customer not remembered: one round trip for the customer with their plan, whether
    # stop spend caps apply (so they cost no query otherwise), the feature's running total
    # in each period its use may count in (the paid period, the calendar month, forever),
    # and the standing's version.
    decision_sql = f"""
        SELECT c.trial_ends_at, cp.status, p.code, cp.current_period_start,
               cp.current_period_end, cp.past_due_since,
               EXISTS (SELECT 1 FROM {cap} s WHERE s.customer_id = c.customer_id
                       AND s.mode = 'stop') AS stop_caps,
               {used_in.format(start="cp.current_period_start")} AS used_in_period,
               {used_in.format(start="%s")} AS used_in_month,
               {used_in.format(start="%s")} AS used_forever,
               c.suspended_at, c.standing_version
        FROM {customer} c
        LEFT JOIN {customer_plan} cp ON cp.customer_id = c.customer_id
        LEFT JOIN {plan} p ON p.id = cp.plan_id
        WHERE c.customer_id = %s"""  # noqa: S608
    # A customer remembered: the standing's version now, and the one total the answer
    # needs (none for a feature that is not metered). Two primary-key lookups.
    remembered_sql = f"""
        SELECT c.standing_version, {used_in.format(start="%s")}
        FROM {customer} c WHERE c.customer_id = %s"""  # noqa: S608
    period_total_sql = f"""
        SELECT used FROM {total}
        WHERE customer_id = %s AND feature_id = %s AND period_start = %s"""  # noqa: S608
    return decision_sql, remembered_sql, period_total_sql


def _datetime(value) -> datetime | None:
    """A datetime column's value as the database driver gives it, as an aware datetime."""
    if value is None or isinstance(value, datetime):
        return value and (value if value.tzinfo else value.replace(tzinfo=UTC))
    return parse_datetime(value).replace(tzinfo=UTC)


def _month_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


# How each column of the queries is read from PostgreSQL's text.
INTS = (fastsql.INT, fastsql.INT)
DECISION_COLUMNS = (
    fastsql.TIMESTAMPTZ, fastsql.TEXT, fastsql.TEXT, fastsql.TIMESTAMPTZ, fastsql.TIMESTAMPTZ,
    fastsql.TIMESTAMPTZ, fastsql.BOOL, fastsql.INT, fastsql.INT, fastsql.INT,
    fastsql.TIMESTAMPTZ, fastsql.INT,
)  # fmt: skip


def _fetchone(db, sql: str, params: list, columns: tuple) -> tuple | None:
    """The first row, or None: on PostgreSQL a prepared statement run on libpq
    (`fastsql`), elsewhere (SQLite) the usual cursor."""
    if db.vendor == "postgresql":
        return fastsql.fetchone(db, sql, params, columns)
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


# Each customer's standing as check-access last read it, beside the standing's version
# then (Customer.standing_version, which the database gives anew on every change): the
# next question reads only the version and the one total it needs, and reads the whole
# standing again when the version moved. Per process; at most this many customers.
STANDING_CACHE_SIZE = 100_000
_standings: dict[str, tuple] = {}


def standing_cache_clear() -> None:
    _standings.clear()


def _standing_remember(customer_id: str, version: int, fields: tuple) -> None:
    if len(_standings) >= STANDING_CACHE_SIZE:
        _standings.clear()
    _standings[customer_id] = (version, fields)


def _standing(fields: tuple, now: datetime) -> Standing:
    """The standing now, from what the decision query read (see `check_access`)."""
    return standing_from(
        trial_ends_at=fields[0], status=fields[1], plan_code=fields[2],
        period_start=fields[3], period_end=fields[4], past_due_since=fields[5],
        suspended=fields[6], now=now,
    )  # fmt: skip


def check_access(*, customer_id: str, feature: str, requested_usage: int = 0) -> Decision:
    """May this customer use `feature` for `requested_usage` more units? One query: for a
    customer whose standing this process remembers, its version and the feature's total
    (two primary-key lookups); otherwise the customer with their plan and the feature's
    totals. Limits come from memory. A moved version costs a second query, and so does a
    total in a period the first query did not read."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of `connection` looks it up again
    decision_sql, remembered_sql, period_total_sql = _sql(db.vendor)
    now = timezone.now()
    adapt = db.ops.adapt_datetimefield_value

    def period_total(feature_id: int, start: datetime) -> int:
        params = [customer_id, feature_id, adapt(start)]
        total = _fetchone(db, period_total_sql, params, (fastsql.INT,))
        return total[0] if total else 0

    remembered = _standings.get(customer_id)
    if remembered is not None:
        version, fields = remembered
        standing = _standing(fields, now)
        limits = None if standing.denial else plan_limits(standing.plan_code, feature)
        start = None
        if limits is not None and limits.metered:
            start = usage_period(standing, limits.reset, now)[0]
        params = [limits and limits.feature_id, start and adapt(start), customer_id]
        row = _fetchone(db, remembered_sql, params, INTS)
        if row is None:
            _standings.pop(customer_id, None)
            return Decision(False, Reason.CUSTOMER_NOT_FOUND, None)
        if row[0] == version:

            def period_used(feature_id: int, at: datetime) -> int:
                if limits is not None and (feature_id, at) == (limits.feature_id, start):
                    return row[1] or 0
                return period_total(feature_id, at)

            return _decided(customer_id, fields, standing, feature, requested_usage,
                            period_used, now)  # fmt: skip
        _standings.pop(customer_id, None)

    wanted_id = feature_id_for(feature)
    month_start = _month_start(now)
    params = [wanted_id, wanted_id, adapt(month_start), wanted_id, adapt(FOREVER), customer_id]
    row = _fetchone(db, decision_sql, params, DECISION_COLUMNS)
    if row is None:
        return Decision(False, Reason.CUSTOMER_NOT_FOUND, None)
    period_start = _datetime(row[3])
    fields = (
        _datetime(row[0]), row[1], row[2], period_start, _datetime(row[4]), _datetime(row[5]),
        row[10] is not None, bool(row[6]),
    )  # fmt: skip
    _standing_remember(customer_id, row[11], fields)
    standing = _standing(fields, now)
    read = {FOREVER: row[9] or 0, month_start: row[8] or 0}
    if period_start is not None:
        read[period_start] = row[7] or 0

    def period_used(feature_id: int, start: datetime) -> int:
        if feature_id == wanted_id and start in read:
            return read[start]
        return period_total(feature_id, start)

    return _decided(customer_id, fields, standing, feature, requested_usage, period_used, now)


def _decided(customer_id, fields, standing, feature, requested_usage, period_used, now):
    spend_bound = None
    if fields[7]:  # stop spend caps
        from .spend import stop_bound_for

        spend_bound = partial(stop_bound_for, customer_id=customer_id, standing=standing, now=now)
    return decision_from(
        standing=standing,
        feature=feature,
        requested_usage=requested_usage,
        period_used=period_used,
        now=now,
        spend_bound=spend_bound,
    )


def decision_from(
    *,
    standing: Standing,
    feature: str,
    requested_usage: int,
    period_used: Callable[[int, datetime], int],
    now: datetime,
    spend_bound: Callable[..., int | None] | None = None,
) -> Decision:
    """The decision, once the customer's standing is known: check-access asks it for one
    feature, the read APIs for every feature of many customers (`period_used` reads the
    period's total for a feature id and period start, from the database or a batch)."""
    grace = standing.grace_ends_at
    if standing.denial:
        return Decision(False, standing.denial, standing.plan_code)
    limits = plan_limits(standing.plan_code, feature)
    if limits is None:
        return Decision(False, Reason.FEATURE_NOT_IN_PLAN, standing.plan_code, grace_ends_at=grace)
    if not limits.metered:
        return Decision(True, Reason.OK, standing.plan_code, grace_ends_at=grace)

    start, resets_at = usage_period(standing, limits.reset, now)
    used = period_used(limits.feature_id, start)
    allowed = limits.limit is None or used + requested_usage <= limits.limit
    reason = Reason.OK if allowed else Reason.USAGE_LIMIT_EXCEEDED
    # A stop spend cap: refused once committed use plus the request would cost past it.
    cap_bound = spend_bound(feature_id=limits.feature_id) if spend_bound and allowed else None
    if cap_bound is not None and used + requested_usage > cap_bound:
        allowed, reason = False, Reason.SPEND_CAP_REACHED
    return Decision(
        has_access=allowed,
        reason=reason,
        plan=standing.plan_code,
        used=used,
        limit=limits.limit,
        resets_at=resets_at,
        soft_limit=limits.soft_limit,
        grace_ends_at=grace,
        feature_id=limits.feature_id,
        period_start=start,
        cap_bound=cap_bound,
    )
