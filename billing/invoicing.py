"""Our current invoices: one per customer and billing cycle, opened when a paid plan starts
and when Stripe finalizes the previous one, with lines computed from the usage and resource
ledgers by `billing.rating`. No Stripe call here: syncing the lines is a separate step."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Case, IntegerField, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Customer
from billing_portal.money import money_format
from licensing.models import CustomerPlan, PlanFeature, ResourceEvent, UsageEvent

from . import discounts, rating
from .models import Invoice, InvoiceLine

PLAN_LINE_KEY = "plan"
# What a refresh may change on a line; the synced_* fields belong to the sync alone.
COMPUTED_FIELDS = [
    "kind", "description", "quantity", "unit_amount", "per", "amount", "period_start",
    "period_end",
]  # fmt: skip


def current_invoice_ensure(*, customer: Customer, now: datetime | None = None) -> Invoice | None:
    """The open invoice of the customer's current paid cycle, made if missing, its lines
    computed; None without a live paid plan (use then counts toward limits, billed nowhere).
    Safe to call again and from any event: one invoice per customer and cycle."""
    now = now or timezone.now()
    paid = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
    if (
        paid is None
        or not paid.is_live
        or paid.plan.amount is None
        or not (paid.current_period_start and paid.current_period_end)
    ):
        return None
    with transaction.atomic():
        invoice, _created = Invoice.objects.get_or_create(
            customer=customer,
            period_start=paid.current_period_start,
            defaults={
                "plan": paid.plan,
                "currency": paid.plan.currency,
                "period_end": paid.current_period_end,
                "subscription_id": paid.subscription_id,
            },
        )
        follows = (paid.plan_id, paid.plan.currency, paid.current_period_end)
        if invoice.is_open and (invoice.plan_id, invoice.currency, invoice.period_end) != follows:
            # A plan change within the cycle: the lines follow the plan now in force.
            invoice.plan, invoice.currency = paid.plan, paid.plan.currency
            invoice.period_end = paid.current_period_end
            invoice.save(update_fields=["plan", "currency", "period_end"])
        invoice_lines_refresh(invoice=invoice, now=now)
    return invoice


def stripe_invoice_subscription_id(invoice: dict) -> str | None:
    """The subscription a Stripe invoice bills (at this API version, under `parent`)."""
    parent = invoice.get("parent") or {}
    return (parent.get("subscription_details") or {}).get("subscription")


def _usage_line(invoice: Invoice, limits: PlanFeature, used: int) -> InvoiceLine:
    price = rating.Price(
        unit_amount=limits.unit_amount, included=limits.included, per=limits.per,
        limit=limits.limit,
    )  # fmt: skip
    rated = rating.usage_rate(used=used, price=price)
    feature = limits.feature
    each = money_format(limits.unit_amount, invoice.currency)
    block = f"{limits.per:,} {feature.unit}s" if limits.per > 1 else feature.unit or "unit"
    return InvoiceLine(
        invoice=invoice,
        key=f"usage:{feature.key}",
        kind=InvoiceLine.Kind.USAGE,
        description=f"{feature.name}: {used:,} used, {limits.included:,} included; "
        f"{rated.quantity:,} beyond, {rated.blocks} blocks of {block} at {each}",
        quantity=rated.quantity,
        unit_amount=limits.unit_amount,
        per=limits.per,
        amount=rated.amount,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
    )


def _held_line(invoice: Invoice, limits: PlanFeature, spans: list[rating.Span]) -> InvoiceLine:
    price = rating.Price(
        unit_amount=limits.unit_amount, included=limits.included, limit=limits.limit
    )
    rated = rating.held_rate(
        spans=spans, start=invoice.period_start, end=invoice.period_end, price=price
    )
    feature = limits.feature
    days = rated.quantity / 86_400
    cycle_days = (invoice.period_end - invoice.period_start) / timedelta(days=1)
    return InvoiceLine(
        invoice=invoice,
        key=f"held:{feature.key}",
        kind=InvoiceLine.Kind.HELD,
        description=f"{feature.name} beyond {limits.included:,} included: "
        f"{days:,.1f} {feature.unit or 'unit'}-days of a {cycle_days:.1f}-day cycle at "
        f"{money_format(limits.unit_amount, invoice.currency)} per {feature.unit or 'unit'} "
        "per cycle",
        quantity=rated.quantity,
        unit_amount=limits.unit_amount,
        per=1,
        amount=rated.amount,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
    )


def invoice_lines_desired(*, invoice: Invoice) -> list[InvoiceLine]:
    """The lines the ledgers say the invoice has now (unsaved), the discount of a coupon
    last. Four queries, whatever the number of features, events and invoices."""
    plan = invoice.plan
    desired = [
        InvoiceLine(
            invoice=invoice,
            key=PLAN_LINE_KEY,
            kind=InvoiceLine.Kind.PLAN,
            description=f"{plan.name} plan",
            quantity=1,
            unit_amount=plan.amount or 0,
            amount=plan.amount or 0,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
        )
    ]
    priced = list(
        PlanFeature.objects.select_related("feature")
        .filter(plan=plan, unit_amount__isnull=False, feature__kind="metered")
        .order_by("feature__key")
    )
    counted = [pf.feature_id for pf in priced if not pf.feature.held]
    held = [pf.feature_id for pf in priced if pf.feature.held]
    used = dict(
        UsageEvent.objects.filter(
            customer_id=invoice.customer_id,
            feature_id__in=counted,
            occurred_at__gte=invoice.period_start,
            occurred_at__lt=invoice.period_end,
        )
        .values("feature_id")
        .annotate(total=Sum("quantity"))
        .values_list("feature_id", "total")
    )
    events: dict[int, list] = {feature_id: [] for feature_id in held}
    if held:
        for feature_id, resource_id, action, at in (
            ResourceEvent.objects.filter(
                customer_id=invoice.customer_id,
                feature_id__in=held,
                occurred_at__lt=invoice.period_end,
            )
            .order_by("occurred_at", "id")
            .values_list("feature_id", "resource_id", "action", "occurred_at")
        ):
            events[feature_id].append((resource_id, action, at))
    for limits in priced:
        if limits.feature.held:
            spans = rating.spans_from_events(events[limits.feature_id])
            desired.append(_held_line(invoice, limits, spans))
        else:
            desired.append(_usage_line(invoice, limits, used.get(limits.feature_id, 0)))
    discount = discounts.invoice_discount(invoice=invoice)
    if discount is not None:
        line = discounts.discount_line(invoice=invoice, discount=discount, lines=desired)
        if line is not None:
            desired.append(line)
    return desired


@transaction.atomic
def invoice_lines_refresh(*, invoice: Invoice, now: datetime | None = None) -> list[InvoiceLine]:
    """Make an open invoice's lines say what the ledgers say, writing only what changed.
    A line the ledger no longer wants drops to zero rather than going away, so the Stripe
    item it was synced to is still known to the sync. A closed invoice never changes."""
    lines = {line.key: line for line in invoice.lines.all()}
    if not invoice.is_open:
        return lines_in_order(lines.values())
    wanted = {line.key: line for line in invoice_lines_desired(invoice=invoice)}
    new, changed = [], []
    for key, line in wanted.items():
        if key not in lines:
            if line.amount or line.kind == InvoiceLine.Kind.PLAN or line.quantity:
                new.append(line)
            continue
        current = lines[key]
        if any(getattr(current, f) != getattr(line, f) for f in COMPUTED_FIELDS):
            for field in COMPUTED_FIELDS:
                setattr(current, field, getattr(line, field))
            changed.append(current)
    for key, current in lines.items():
        if key not in wanted and (current.amount or current.quantity):
            current.quantity, current.amount = 0, 0
            current.description = f"{current.description} (no longer billed)"
            changed.append(current)
    if new:
        # A concurrent refresh may have made the same line from the same ledger.
        InvoiceLine.objects.bulk_create(new, ignore_conflicts=True)
    if changed:
        InvoiceLine.objects.bulk_update(changed, [*COMPUTED_FIELDS, "updated_at"])
    invoice.lines_computed_at = now or timezone.now()
    invoice.save(update_fields=["lines_computed_at"])
    return lines_in_order(invoice.lines.all())


def lines_in_order(lines) -> list[InvoiceLine]:
    """The plan first, then the rest by key, the discount last."""
    return sorted(
        lines,
        key=lambda line: (
            line.kind != InvoiceLine.Kind.PLAN,
            line.kind == InvoiceLine.Kind.DISCOUNT,
            line.key,
        ),
    )


# --- Reads for the pages ------------------------------------------------------------------------


def current_invoice(*, customer: Customer) -> Invoice | None:
    return (
        Invoice.objects.for_customer(customer).open().select_related("plan").order_by(
            "-period_start"
        ).first()
    )  # fmt: skip


def invoices_with_totals(*, customer: Customer):
    """Every invoice of the customer, the open ones first, each with `lines_total` (our
    ledger's sum): one query however many there are."""
    return (
        Invoice.objects.for_customer(customer)
        .annotate(
            lines_total=Sum("lines__amount"),
            not_open=Case(
                When(status=Invoice.Status.OPEN, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
        )
        .order_by("not_open", "-period_start", "-id")
    )


@dataclass(frozen=True)
class DayBar:
    """One day's bar in the usage chart: an SVG 100 high, each day 10 wide."""

    index: int
    day: datetime
    quantity: int
    percent: int

    @property
    def x(self) -> int:
        return self.index * 10

    @property
    def y(self) -> int:
        return 100 - self.percent


@dataclass(frozen=True)
class FeatureDays:
    key: str
    name: str
    unit: str
    total: int
    days: list[DayBar]

    @property
    def width(self) -> int:
        return len(self.days) * 10


def usage_by_day(*, invoice: Invoice) -> list[FeatureDays]:
    """Use per counted feature and UTC day over the invoice's cycle, every day of the
    cycle present (zero when nothing was used), for the usage page's chart. Two queries."""
    rows = (
        UsageEvent.objects.filter(
            customer_id=invoice.customer_id,
            feature__held=False,
            occurred_at__gte=invoice.period_start,
            occurred_at__lt=invoice.period_end,
        )
        .annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .values("feature__key", "feature__name", "feature__unit", "day")
        .annotate(total=Sum("quantity"))
        .order_by("feature__key", "day")
    )
    per_feature: dict[str, dict] = {}
    for row in rows:
        entry = per_feature.setdefault(
            row["feature__key"],
            {"name": row["feature__name"], "unit": row["feature__unit"], "days": {}},
        )
        entry["days"][row["day"]] = row["total"]
    first = invoice.period_start.astimezone(UTC).date()
    last = (invoice.period_end - timedelta(microseconds=1)).astimezone(UTC).date()
    calendar = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    result = []
    for key, entry in per_feature.items():
        top = max(entry["days"].values())
        result.append(
            FeatureDays(
                key=key,
                name=entry["name"],
                unit=entry["unit"],
                total=sum(entry["days"].values()),
                days=[
                    DayBar(index, day, used, round(100 * used / top) if top else 0)
                    for index, day in enumerate(calendar)
                    for used in [entry["days"].get(day, 0)]
                ],
            )
        )
    return result


@dataclass(frozen=True)
class Holding:
    feature: str
    resource_id: str
    attached_at: datetime
    detached_at: datetime | None
    days_in_cycle: float


def holdings_in_cycle(*, invoice: Invoice) -> list[Holding]:
    """Each resource held during the invoice's cycle, with the days it was held in it."""
    events: dict[str, list] = {}
    names: dict[str, str] = {}
    for key, name, resource_id, action, at in (
        ResourceEvent.objects.filter(
            customer_id=invoice.customer_id, occurred_at__lt=invoice.period_end
        )
        .order_by("occurred_at", "id")
        .values_list("feature__key", "feature__name", "resource_id", "action", "occurred_at")
    ):
        events.setdefault(key, []).append((resource_id, action, at))
        names[key] = name
    result = []
    for key, feature_events in events.items():
        for span in rating.spans_from_events(feature_events):
            inside = rating.clip(span, invoice.period_start, invoice.period_end)
            if inside:
                days = (inside[1] - inside[0]) / timedelta(days=1)
                result.append(Holding(names[key], span.resource_id, span.start, span.end, days))
    return result
