"""Coupons on a customer's subscription as our ledger sees them: recording the discount
Stripe made, which of our invoices it applies to, and what it takes off, computed the way
Stripe computes it, so that the renewal's drift check still matches Stripe's total."""

import logging
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction

from accounts.models import Customer
from billing_portal.money import money_format

from . import gateway
from .models import Invoice, InvoiceLine, SubscriptionDiscount

logger = logging.getLogger(__name__)

DISCOUNT_LINE_KEY = "discount"


def _moment(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


@transaction.atomic
def subscription_discount_record(
    *, customer: Customer, subscription: dict, coupon: dict
) -> SubscriptionDiscount:
    """The discount Stripe made of `coupon` on the subscription (its `discounts` expanded),
    kept with the coupon's terms; the one it replaced ends when this one starts."""
    made = [
        discount
        for discount in subscription.get("discounts") or []
        if isinstance(discount, dict)
        and (discount.get("source") or {}).get("coupon") in (coupon["id"], {"id": coupon["id"]})
    ]
    if not made:
        raise ValueError(f"Stripe's subscription has no discount of coupon {coupon['id']}")
    discount = max(made, key=lambda found: found["start"])
    starts_at = _moment(discount["start"])
    SubscriptionDiscount.objects.filter(
        customer=customer, subscription_id=subscription["id"], removed_at__isnull=True
    ).exclude(stripe_discount_id=discount["id"]).update(removed_at=starts_at)
    percent = coupon.get("percent_off")
    recorded, _ = SubscriptionDiscount.objects.update_or_create(
        stripe_discount_id=discount["id"],
        defaults={
            "customer": customer,
            "subscription_id": subscription["id"],
            "coupon_id": coupon["id"],
            "coupon_name": coupon.get("name") or "",
            "percent_off": Decimal(str(percent)) if percent is not None else None,
            "amount_off": coupon.get("amount_off"),
            "currency": coupon.get("currency") or "",
            "duration": coupon["duration"],
            "duration_in_months": coupon.get("duration_in_months"),
            "starts_at": starts_at,
            "ends_at": _moment(discount.get("end")),
        },
    )
    return recorded


def subscription_discounts_follow(*, customer: Customer | None, subscription: dict) -> None:
    """Our records follow the discounts of Stripe's subscription, as every sync of it
    sees them: one gone at Stripe (removed in the Dashboard, a `once` one used, a
    repeating one ended) is marked removed at Stripe's time now; one made at Stripe
    (the Dashboard) is recorded with its coupon. Stripe is asked only when they differ;
    outside any transaction."""
    on_stripe = {
        found if isinstance(found, str) else found["id"]
        for found in subscription.get("discounts") or []
    }
    recorded = dict(
        SubscriptionDiscount.objects.filter(subscription_id=subscription["id"]).values_list(
            "stripe_discount_id", "removed_at"
        )
    )
    gone = {di for di, removed_at in recorded.items() if removed_at is None} - on_stripe
    new = on_stripe - set(recorded)
    if gone:
        now = _moment(gateway.stripe_now(test_clock_id=subscription.get("test_clock")))
        SubscriptionDiscount.objects.filter(
            stripe_discount_id__in=gone, removed_at__isnull=True
        ).update(removed_at=now)
    if not new or customer is None:
        return
    expanded = gateway.subscription_discounts_retrieve(subscription_id=subscription["id"])
    for discount in expanded.get("discounts") or []:
        if not isinstance(discount, dict) or discount["id"] not in new:
            continue
        coupon_id = (discount.get("source") or {}).get("coupon")
        coupon_id = coupon_id if isinstance(coupon_id, str) else (coupon_id or {}).get("id")
        if not coupon_id:
            continue  # a promotion code's: not ours to model
        coupon = gateway.coupon_retrieve(coupon_id=coupon_id)
        if (coupon.get("applies_to") or {}).get("products"):
            logger.warning("Coupon %s on %s is limited to products: not modelled",
                           coupon_id, subscription["id"])  # fmt: skip
            continue
        subscription_discount_record(customer=customer, subscription=expanded, coupon=coupon)


def discount_applies(discount: SubscriptionDiscount, invoice: Invoice) -> bool:
    """Whether Stripe's renewal invoice for this cycle (made at its end) carries the
    discount: redeemed before it, not removed before it, not ended (a repeating coupon
    covers invoices made before its `end`), and for a `once` coupon, only the cycle it
    was redeemed in (its first invoice)."""
    renews_at = invoice.period_end
    if discount.subscription_id != invoice.subscription_id or discount.starts_at >= renews_at:
        return False
    if discount.removed_at is not None and discount.removed_at < renews_at:
        return False  # gone before the renewal (one used by it is removed at it or after)
    if discount.ends_at is not None and renews_at >= discount.ends_at:
        return False
    if discount.duration == SubscriptionDiscount.Duration.ONCE:
        return discount.starts_at >= invoice.period_start
    return True


def invoice_discount(*, invoice: Invoice) -> SubscriptionDiscount | None:
    """The discount on this invoice, if any (one query)."""
    candidates = SubscriptionDiscount.objects.filter(
        customer_id=invoice.customer_id, subscription_id=invoice.subscription_id
    )
    return next((d for d in candidates if discount_applies(d, invoice)), None)


def discount_amount(discount: SubscriptionDiscount, *, base: int) -> int:
    """What the discount takes off `base` (the discountable lines' sum): a percentage
    rounded half up to the minor unit, or a fixed amount, never more than `base`."""
    if base <= 0:
        return 0
    if discount.percent_off is not None:
        off = Decimal(base) * discount.percent_off / 100
        return int(off.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return min(discount.amount_off or 0, base)


def discount_terms(discount: SubscriptionDiscount) -> str:
    """ "20 % off for 3 months", "€5.00 off once", "10 % off forever"."""
    if discount.percent_off is not None:
        off = f"{discount.percent_off.normalize():f} % off"
    else:
        off = f"{money_format(discount.amount_off or 0, discount.currency)} off"
    if discount.duration == SubscriptionDiscount.Duration.REPEATING:
        months = discount.duration_in_months or 0
        return f"{off} for {months} month{'s' if months != 1 else ''}"
    return (
        f"{off} {'once' if discount.duration == SubscriptionDiscount.Duration.ONCE else 'forever'}"
    )


def discount_line(
    *, invoice: Invoice, discount: SubscriptionDiscount, lines: list[InvoiceLine]
) -> InvoiceLine | None:
    """The invoice's discount line (negative) over its other lines, all of which Stripe
    discounts (the plan's price and the usage items; prorations are not ours)."""
    base = sum(line.amount for line in lines if line.amount > 0)
    off = discount_amount(discount, base=base)
    if not off:
        return None
    return InvoiceLine(
        invoice=invoice,
        key=DISCOUNT_LINE_KEY,
        kind=InvoiceLine.Kind.DISCOUNT,
        description=f"Discount: {discount.coupon_id}, {discount_terms(discount)}",
        quantity=1,
        unit_amount=-off,
        amount=-off,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
    )
