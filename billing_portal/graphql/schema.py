"""The read-only GraphQL API over the portal's replica: customers, their plan and status,
entitlements (check-access's decision per feature), usage in the current period, the current
invoice and invoice history, and licenses. No mutations.

Every list loads for the whole page at once (a `Batch` per page of customers), so a
documented query costs the same number of SQL queries for a page of 1 as of 100."""

import base64
import binascii
import uuid
from datetime import datetime
from typing import Generic, TypeVar

import strawberry
import strawberry_django
from django.db.models import F, Prefetch, Q, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from graphql import GraphQLError
from strawberry import auto
from strawberry.scalars import JSON

from accounts.models import Customer as CustomerModel
from billing.models import Invoice as InvoiceModel
from billing.models import InvoiceLine as InvoiceLineModel
from licensing.entitlements import customer_standing
from licensing.models import License as LicenseModel
from licensing.selectors import customers_entitlements

from .bounds import MAX_PAGE, bounds

DEFAULT_PAGE = 20
T = TypeVar("T")


class NotFound(GraphQLError):
    def __init__(self, what: str):
        super().__init__(f"Not found: {what}", extensions={"code": "not_found"})


# --- Cursors: opaque keys of the last row seen (keyset pagination) ------------------------


def cursor_encode(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode()


def cursor_decode(cursor: str, parts: int) -> list[str]:
    try:
        values = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        values = []
    if len(values) != parts:
        raise GraphQLError("Not a cursor from this API.", extensions={"code": "invalid_cursor"})
    return values


def _moment(text: str) -> datetime:
    moment = parse_datetime(text)
    if moment is None:
        raise GraphQLError("Not a cursor from this API.", extensions={"code": "invalid_cursor"})
    return moment


def page_size(first: int) -> int:
    """The bound holds for variables too (QueryBounds checks literals before any query)."""
    if not 1 <= first <= MAX_PAGE:
        raise GraphQLError(
            f"`first` must be 1 to {MAX_PAGE} (the page size bound).",
            extensions={"code": "page_size_exceeded", "bound": MAX_PAGE},
        )
    return first


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


# --- Model-backed types ----------------------------------------------------------------------


@strawberry_django.type(InvoiceLineModel)
class InvoiceLine:
    key: auto
    kind: auto
    description: auto
    quantity: auto
    unit_amount: auto
    per: auto
    amount: auto
    period_start: auto
    period_end: auto


@strawberry_django.type(InvoiceModel)
class Invoice:
    id: auto
    status: auto
    currency: auto
    period_start: auto
    period_end: auto
    number: auto
    total: int | None = strawberry.field(description="Stripe's finalized total, minor units.")
    hosted_invoice_url: auto
    invoice_pdf: auto
    finalized_at: auto

    @strawberry.field(description="Our ledger's sum of the lines, in minor units.")
    def lines_total(self) -> int:
        return self.lines_total_value or 0

    @strawberry.field
    def lines(self) -> list[InvoiceLine]:
        # Prefetched with the page (invoices_loaded): no query here.
        return list(self.lines.all())


@strawberry_django.type(LicenseModel)
class License:
    plan_code: auto
    status: auto
    features: JSON
    issued_at: auto
    expires_at: auto
    grace_ends_at: auto
    revoked_at: auto
    token: str = strawberry.field(description="The signed JWT (EdDSA).")

    @strawberry.field
    def jti(self) -> strawberry.ID:
        return strawberry.ID(str(self.jti))


# --- Computed types ----------------------------------------------------------------------


@strawberry.type
class Plan:
    code: str | None = strawberry.field(description="`trial` during the free trial.")
    status: str = strawberry.field(description="trialing, active, past_due, canceled, expired")
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    grace_ends_at: datetime | None


@strawberry.type(description="check-access's decision for one feature, nothing requested.")
class Entitlement:
    feature: str
    kind: str
    has_access: bool
    reason: str
    plan: str | None
    used: int | None
    limit: int | None
    remaining: int | None
    resets_at: datetime | None
    soft_limit: int | None
    soft_limit_exceeded: bool
    grace_ends_at: datetime | None
    warning: str | None


@strawberry.type
class Usage:
    feature: str
    used: int
    limit: int | None
    remaining: int | None
    period_start: datetime
    resets_at: datetime | None


class Batch:
    """The customers of one page, and what has been loaded for all of them at once."""

    def __init__(self, customers: list[CustomerModel]):
        self.customers = customers
        self.ids = [c.customer_id for c in customers]
        self.loaded: dict = {}

    def once(self, key, load):
        if key not in self.loaded:
            self.loaded[key] = load()
        return self.loaded[key]


def invoices_loaded(queryset) -> list[InvoiceModel]:
    return list(
        queryset.annotate(lines_total_value=Sum("lines__amount", default=0)).prefetch_related(
            Prefetch("lines", queryset=InvoiceLineModel.objects.order_by("id"))
        )
    )


def _connection(rows: list, first: int, cursor_of) -> Connection:
    more = len(rows) > first
    rows = rows[:first]
    edges = [Edge(cursor=cursor_of(row), node=row) for row in rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None),
    )


def _invoice_cursor(invoice) -> str:
    return cursor_encode(invoice.period_start.isoformat(), str(invoice.pk))


def _license_cursor(license) -> str:
    return cursor_encode(license.issued_at.isoformat(), str(license.jti))


def _per_customer(queryset, ids, order, first, after_q):
    """At most first + 1 rows per customer in one query (a window over each customer)."""
    queryset = queryset.filter(customer_id__in=ids)
    if after_q is not None:
        queryset = queryset.filter(after_q)
    ranked = queryset.annotate(
        rank=Window(RowNumber(), partition_by=F("customer_id"), order_by=order)
    ).filter(rank__lte=first + 1)
    return ranked.order_by("customer_id", *order)


@strawberry.type
class Customer:
    _customer: strawberry.Private[CustomerModel]
    _batch: strawberry.Private[Batch]

    @strawberry.field
    def customer_id(self) -> strawberry.ID:
        return strawberry.ID(self._customer.customer_id)

    @strawberry.field
    def name(self) -> str:
        return self._customer.name

    @strawberry.field
    def created_at(self) -> datetime:
        return self._customer.created_at

    @strawberry.field
    def trial_ends_at(self) -> datetime:
        return self._customer.trial_ends_at

    @strawberry.field
    def plan(self) -> Plan:
        customer = self._customer
        standing = customer_standing(customer, self._batch.once("now", timezone.now))
        paid = getattr(customer, "_paid_plan", None)
        return Plan(
            code=standing.plan_code,
            status=standing.status,
            current_period_start=paid.current_period_start if paid else None,
            current_period_end=paid.current_period_end if paid else None,
            cancel_at_period_end=bool(paid and paid.cancel_at_period_end),
            grace_ends_at=standing.grace_ends_at,
        )

    def _entitlements(self):
        batch = self._batch
        now = batch.once("now", timezone.now)
        loaded = batch.once(
            "entitlements", lambda: customers_entitlements(customers=batch.customers, now=now)
        )
        return loaded[self._customer.customer_id]

    @strawberry.field(description="check-access's decision for every feature, now.")
    def entitlements(self) -> list[Entitlement]:
        return [
            Entitlement(
                feature=e.feature,
                kind=e.kind,
                has_access=e.decision.has_access,
                reason=e.decision.reason,
                plan=e.decision.plan,
                used=e.decision.used,
                limit=e.decision.limit,
                remaining=e.decision.remaining,
                resets_at=e.decision.resets_at,
                soft_limit=e.decision.soft_limit,
                soft_limit_exceeded=e.decision.soft_limit_exceeded,
                grace_ends_at=e.decision.grace_ends_at,
                warning=e.decision.warning,
            )
            for e in self._entitlements()
        ]

    @strawberry.field(description="Use of each metered feature in its current period.")
    def usage(self) -> list[Usage]:
        return [
            Usage(
                feature=e.feature,
                used=e.decision.used,
                limit=e.decision.limit,
                remaining=e.decision.remaining,
                period_start=e.decision.period_start,
                resets_at=e.decision.resets_at,
            )
            for e in self._entitlements()
            if e.decision.used is not None
        ]

    @strawberry.field(description="The invoice of the cycle in progress, if any.")
    def current_invoice(self) -> Invoice | None:
        def load():
            current = {}
            open_invoices = InvoiceModel.objects.filter(
                customer_id__in=self._batch.ids, status=InvoiceModel.Status.OPEN
            ).order_by("customer_id", "-period_start")
            for invoice in invoices_loaded(open_invoices):
                current.setdefault(invoice.customer_id, invoice)
            return current

        return self._batch.once("current_invoice", load).get(self._customer.customer_id)

    @strawberry.field(description="Invoice history, newest cycle first (cursor pages).")
    def invoices(self, first: int = DEFAULT_PAGE, after: str | None = None) -> Connection[Invoice]:
        first = page_size(first)
        after_q = None
        if after:
            start, pk = cursor_decode(after, 2)
            moment = _moment(start)
            if not pk.isdigit():
                raise GraphQLError(
                    "Not a cursor from this API.", extensions={"code": "invalid_cursor"}
                )
            after_q = Q(period_start__lt=moment) | Q(period_start=moment, id__lt=int(pk))

        def load():
            rows = invoices_loaded(
                _per_customer(
                    InvoiceModel.objects.all(),
                    self._batch.ids,
                    [F("period_start").desc(), F("id").desc()],
                    first,
                    after_q,
                )
            )
            grouped: dict = {}
            for invoice in rows:
                grouped.setdefault(invoice.customer_id, []).append(invoice)
            return grouped

        rows = self._batch.once(("invoices", first, after), load)
        return _connection(rows.get(self._customer.customer_id, []), first, _invoice_cursor)

    @strawberry.field(description="The license in force (the newest, unrevoked).")
    def license(self) -> License | None:
        def load():
            current = LicenseModel.objects.filter(
                customer_id__in=self._batch.ids, revoked_at__isnull=True
            ).order_by("customer_id", "-issued_at")
            found = {}
            for license in current:
                found.setdefault(license.customer_id, license)
            return found

        return self._batch.once("license", load).get(self._customer.customer_id)

    @strawberry.field(description="Every license issued, newest first (cursor pages).")
    def licenses(self, first: int = DEFAULT_PAGE, after: str | None = None) -> Connection[License]:
        first = page_size(first)
        after_q = None
        if after:
            issued, jti = cursor_decode(after, 2)
            moment = _moment(issued)
            try:
                jti = uuid.UUID(jti)
            except ValueError:
                raise GraphQLError(
                    "Not a cursor from this API.", extensions={"code": "invalid_cursor"}
                ) from None
            after_q = Q(issued_at__lt=moment) | Q(issued_at=moment, jti__lt=jti)

        def load():
            rows = _per_customer(
                LicenseModel.objects.all(),
                self._batch.ids,
                [F("issued_at").desc(), F("jti").desc()],
                first,
                after_q,
            )
            grouped: dict = {}
            for license in rows:
                grouped.setdefault(license.customer_id, []).append(license)
            return grouped

        rows = self._batch.once(("licenses", first, after), load)
        return _connection(rows.get(self._customer.customer_id, []), first, _license_cursor)


def _customers(queryset) -> list[CustomerModel]:
    customers = list(queryset.select_related("plan__plan"))
    for customer in customers:
        try:
            customer._paid_plan = customer.plan
        except CustomerModel.plan.RelatedObjectDoesNotExist:
            customer._paid_plan = None
    return customers


def _nodes(customers: list[CustomerModel]) -> list[Customer]:
    batch = Batch(customers)
    return [Customer(_customer=c, _batch=batch) for c in customers]


def _readable(info: strawberry.Info):
    return info.context.readable_customers


@strawberry.type
class Query:
    @strawberry.field(description="The caller's own account (a customer's session or token).")
    def viewer(self, info: strawberry.Info) -> Customer | None:
        if info.context.viewer_id is None:
            return None
        customer = _customers(CustomerModel.objects.filter(customer_id=info.context.viewer_id))
        return _nodes(customer)[0] if customer else None

    @strawberry.field(description="One customer; not found unless the caller may read it.")
    def customer(self, info: strawberry.Info, customer_id: strawberry.ID) -> Customer | None:
        found = _customers(_readable(info).filter(customer_id=str(customer_id)))
        if not found:
            raise NotFound(f"customer {customer_id}")
        return _nodes(found)[0]

    @strawberry.field(description="Customers the caller may read, oldest first (cursor pages).")
    def customers(
        self, info: strawberry.Info, first: int = DEFAULT_PAGE, after: str | None = None
    ) -> Connection[Customer]:
        first = page_size(first)
        queryset = _readable(info).order_by("created_at", "customer_id")
        if after:
            created, customer_id = cursor_decode(after, 2)
            moment = _moment(created)
            queryset = queryset.filter(
                Q(created_at__gt=moment) | Q(created_at=moment, customer_id__gt=customer_id)
            )
        rows = _customers(queryset[: first + 1])
        more = len(rows) > first
        nodes = _nodes(rows[:first])
        edges = [
            Edge(
                cursor=cursor_encode(n._customer.created_at.isoformat(), n._customer.customer_id),
                node=n,
            )
            for n in nodes
        ]
        return Connection(
            edges=edges,
            page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None),
        )


schema = strawberry.Schema(query=Query, extensions=bounds())
