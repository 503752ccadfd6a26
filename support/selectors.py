"""Reads for the support console: finding a customer, and everything their page shows,
from our database and dj-stripe's mirror only (never Stripe), in a number of queries that
does not grow with their invoices, cards, licenses, events or timeline."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone
from djstripe import models as djstripe_models

from accounts.models import Customer, Membership
from audit.models import Entry
from billing import invoicing, mirror
from billing.discounts import discount_terms
from billing.models import BillingInfo, Invoice, PaymentMethod, StripeEvent, SubscriptionDiscount
from licensing.entitlements import customer_standing
from licensing.models import CustomerPlan, License
from licensing.selectors import customer_feature_use

from .models import Erasure
from .timeline import TimelineItem, card_ids_named, timeline_items

# How much of each history the page shows (the admin's lists have the rest).
TIMELINE_SHOWN = 200
LICENSES_SHOWN = 20
EVENTS_SHOWN = 50
SEARCH_RESULTS = 50


def customers_search(*, query: str) -> list[Customer]:
    """Customers by a member's email (any letter case, a part will do), our cust_ id,
    Stripe's cus_ id, or an invoice number (ours or Stripe's in_ id)."""
    query = query.strip()
    if not query:
        return []
    matches = (
        Q(pk=query)
        | Q(memberships__user__email__icontains=query)
        | Q(billing__billing_info__stripe_id=query)
        | Q(invoices__number__iexact=query)
        | Q(invoices__stripe_invoice_id=query)
    )
    if len(query) >= 3:
        matches |= Q(name__icontains=query)
    found = Customer.objects.filter(matches).distinct().order_by("created_at")
    return list(found.prefetch_related("memberships__user")[:SEARCH_RESULTS])


@dataclass
class InvoiceRow:
    invoice: Invoice
    lines_total: int
    stripe_status: str  # Stripe's, from the mirror: open, paid, void, uncollectible, draft


@dataclass
class SupportPage:
    customer: Customer
    now: datetime
    members: list[Membership]
    plan: CustomerPlan | None
    standing_status: str
    grace_ends_at: datetime | None
    stripe_customer_id: str | None
    cards: list[mirror.CardView]
    current_invoice: Invoice | None
    current_lines: list
    invoices: list[InvoiceRow]
    licenses: list[License]
    feature_use: list
    events: list[StripeEvent]
    timeline: list[TimelineItem]
    erasure: Erasure | None
    open_invoices: list[InvoiceRow] = field(default_factory=list)
    discount: SubscriptionDiscount | None = None  # the coupon on the subscription now

    @property
    def discount_terms(self) -> str:
        return discount_terms(self.discount) if self.discount else ""

    @property
    def current_total(self) -> int:
        return sum(line.amount for line in self.current_lines)

    @property
    def current_license(self) -> License | None:
        return next((lic for lic in self.licenses if lic.revoked_at is None), None)


def support_page(*, customer_id: str, now: datetime | None = None) -> SupportPage | None:
    now = now or timezone.now()
    customer = (
        Customer.objects.select_related("plan__plan", "billing__billing_info")
        .filter(pk=customer_id)
        .first()
    )
    if customer is None:
        return None
    try:
        plan = customer.plan
    except CustomerPlan.DoesNotExist:
        plan = None
    try:
        billing_info: BillingInfo | None = customer.billing.billing_info
    except Customer.billing.RelatedObjectDoesNotExist:
        billing_info = None
    members = list(customer.memberships.select_related("user").order_by("created_at"))
    standing = customer_standing(customer, now)

    our_cards = list(PaymentMethod.objects.for_customer(customer).order_by("order", "created_at"))
    entries = list(Entry.objects.filter(customer=customer).select_related("actor")[:TIMELINE_SHOWN])
    # One mirror read for the cards on file and the cards the timeline names (removed ones too).
    named = card_ids_named(entries) - {card.stripe_id for card in our_cards}
    every_card = our_cards + [PaymentMethod(stripe_id=pm, order=-1) for pm in sorted(named)]
    shown = mirror.cards_for_display(every_card)
    by_id = {card.stripe_id: card for card in shown}

    invoices = list(invoicing.invoices_with_totals(customer=customer).select_related("plan"))
    stripe_ids = [inv.stripe_invoice_id for inv in invoices if inv.stripe_invoice_id]
    statuses = dict(
        djstripe_models.Invoice.objects.filter(id__in=stripe_ids).values_list(
            "id", "stripe_data__status"
        )
    )
    rows = [
        InvoiceRow(
            invoice=inv,
            lines_total=inv.lines_total or 0,
            stripe_status=statuses.get(inv.stripe_invoice_id) or "",
        )
        for inv in invoices
    ]
    current = next((row.invoice for row in rows if row.invoice.is_open), None)
    current_lines = invoicing.lines_in_order(current.lines.all()) if current else []

    related_ids = _stripe_ids(
        invoices=[inv.stripe_invoice_id for inv in invoices],
        cards=[card.stripe_id for card in our_cards],
        billing_info=billing_info,
        plan=plan,
    )
    events = list(StripeEvent.objects.filter(object_id__in=related_ids)[:EVENTS_SHOWN])

    return SupportPage(
        customer=customer,
        now=now,
        members=members,
        plan=plan,
        standing_status=standing.denial or standing.status,
        grace_ends_at=standing.grace_ends_at,
        stripe_customer_id=billing_info.stripe_id if billing_info else None,
        cards=[by_id[card.stripe_id] for card in our_cards],
        current_invoice=current,
        current_lines=current_lines,
        invoices=rows,
        open_invoices=[row for row in rows if row.stripe_status == "open"],
        licenses=list(License.objects.filter(customer=customer)[:LICENSES_SHOWN]),
        feature_use=customer_feature_use(customer=customer, now=now),
        events=events,
        timeline=timeline_items(entries, by_id),
        erasure=Erasure.objects.filter(customer_id=customer.pk).first(),
        discount=SubscriptionDiscount.objects.filter(
            customer=customer, removed_at__isnull=True
        ).first(),
    )


def _stripe_ids(*, invoices, cards, billing_info, plan) -> set[str]:
    ids = {stripe_id for stripe_id in [*invoices, *cards] if stripe_id}
    if billing_info:
        ids.add(billing_info.stripe_id)
    if plan and plan.subscription_id:
        ids.add(plan.subscription_id)
    return ids


def customer_stripe_ids(*, customer_id: str) -> set[str]:
    """The ids of a customer's Stripe objects that events are about."""
    return _stripe_ids(
        invoices=list(
            Invoice.objects.filter(customer_id=customer_id).values_list(
                "stripe_invoice_id", flat=True
            )
        ),
        cards=list(
            PaymentMethod.objects.filter(
                billing_info__customer_links__customer_id=customer_id
            ).values_list("stripe_id", flat=True)
        ),
        billing_info=BillingInfo.objects.filter(customer_links__customer_id=customer_id).first(),
        plan=CustomerPlan.objects.filter(customer_id=customer_id).first(),
    )


def customer_event_ids(*, customer: Customer) -> set[str]:
    """The stored events a replay may name: those the customer's page lists."""
    page = support_page(customer_id=customer.pk)
    return {event.pk for event in page.events} if page else set()
