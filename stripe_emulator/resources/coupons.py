"""Coupons, and the discounts that redeem them on a subscription: what a discount takes off
an invoice is computed in ``invoicing._recompute`` from the terms the invoice carries."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.currencies import currency_check
from stripe_emulator.errors import StripeError, invalid_request, resource_missing
from stripe_emulator.ids import new_id, random_token
from stripe_emulator.render import includable, paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj, Store
from stripe_emulator.timeutil import add_interval

from .common import UNSET, assign, created_filter, deleted

DURATIONS = ("forever", "once", "repeating")


def _coupon_valid(coupon: Obj, now: int) -> bool:
    """Whether the coupon can still be redeemed: not past `redeem_by`, not used up."""
    if coupon.get("deleted"):
        return False
    if coupon["redeem_by"] is not None and now >= coupon["redeem_by"]:
        return False
    maximum = coupon["max_redemptions"]
    return maximum is None or coupon["times_redeemed"] < maximum


def coupon_create(ctx: Context, params: dict[str, Any]) -> Obj:
    now = ctx.now()
    percent_off, amount_off = params.get("percent_off"), params.get("amount_off")
    if (percent_off is None) == (amount_off is None):
        raise invalid_request(
            "You must pass exactly one of percent_off or amount_off.",
            param="percent_off" if percent_off is None else "amount_off",
        )
    currency = params.get("currency")
    if amount_off is not None:
        if amount_off <= 0:
            raise invalid_request("Invalid amount_off: must be a positive integer.", "amount_off")
        if not currency:
            raise invalid_request(
                "You must pass currency when passing amount_off.", param="currency"
            )
        currency_check(currency, "currency")
    if percent_off is not None and not 0 < percent_off <= 100:
        raise invalid_request(
            "Invalid percent_off: must be greater than 0 and at most 100.", param="percent_off"
        )
    duration = params.get("duration", "once")
    months = params.get("duration_in_months")
    if duration == "repeating" and not months:
        raise invalid_request(
            "You must pass duration_in_months when duration is repeating.",
            param="duration_in_months",
        )
    if duration != "repeating" and months is not None:
        raise invalid_request(
            "duration_in_months can only be passed when duration is repeating.",
            param="duration_in_months",
        )
    if months is not None and months < 1:
        raise invalid_request(
            "Invalid duration_in_months: must be at least 1.", "duration_in_months"
        )
    redeem_by = params.get("redeem_by")
    if redeem_by is not None and redeem_by <= now:
        raise invalid_request("redeem_by must be in the future.", param="redeem_by")
    maximum = params.get("max_redemptions")
    if maximum is not None and maximum < 1:
        raise invalid_request("Invalid max_redemptions: must be at least 1.", "max_redemptions")
    coupon_id = params.get("id") or random_token(8)
    existing = ctx.store.get(coupon_id)
    if existing is not None and not existing.get("deleted"):
        raise invalid_request("Coupon already exists.", param="id", code="resource_already_exists")
    if existing is not None:
        ctx.store.remove(coupon_id)  # a deleted coupon's id may be used again
    coupon: Obj = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": amount_off,
        "created": now,
        "currency": currency.lower() if amount_off is not None and currency else None,
        "duration": duration,
        "duration_in_months": months,
        "livemode": False,
        "max_redemptions": maximum,
        "metadata": {},
        "name": params.get("name"),
        "percent_off": percent_off,
        "redeem_by": redeem_by,
        "times_redeemed": 0,
        "valid": True,
        "_applies_to": list((params.get("applies_to") or {}).get("products") or []),
    }
    assign(coupon, {k: v for k, v in params.items() if k == "metadata"}, ())
    return ctx.store.add(coupon)


def _coupon_fetch(ctx: Context, coupon_id: str, param: str = "id") -> Obj:
    found = ctx.store.get(coupon_id)
    if found is None or found.get("object") != "coupon" or found.get("deleted"):
        raise resource_missing("coupon", coupon_id, param)
    return found


def _refreshed(ctx: Context, coupon: Obj) -> Obj:
    valid = _coupon_valid(coupon, ctx.now())
    if coupon["valid"] != valid:
        coupon["valid"] = valid
        ctx.store.touch(coupon)
    return coupon


def coupon_retrieve(ctx: Context, params: dict[str, Any], coupon: str) -> Obj:
    return _refreshed(ctx, _coupon_fetch(ctx, coupon))


def coupon_update(ctx: Context, params: dict[str, Any], coupon: str) -> Obj:
    """Only the name and metadata of a coupon change; its terms are fixed."""
    found = _coupon_fetch(ctx, coupon)
    assign(found, params, ("name",))
    ctx.store.touch(found)
    return _refreshed(ctx, found)


def coupon_delete(ctx: Context, params: dict[str, Any], coupon: str) -> Obj:
    """A deleted coupon cannot be redeemed again; discounts made from it keep applying."""
    found = _coupon_fetch(ctx, coupon)
    tombstone = deleted(found)
    ctx.store.replace(tombstone)
    return tombstone


def coupon_list(ctx: Context, params: dict[str, Any]) -> Obj:
    coupons = [
        _refreshed(ctx, coupon)
        for coupon in ctx.store.select("coupon", lambda c: created_filter(c, params.get("created")))
    ]
    return paginate(coupons, params, "/v1/coupons")


@includable("coupon", "applies_to")
def _coupon_applies_to(store: Store, coupon: Obj) -> Obj:
    return {"products": list(coupon.get("_applies_to") or [])}


# Discounts on subscriptions ---------------------------------------------------------------


def _redeem(ctx: Context, subscription: Obj, coupon_id: str, param: str) -> Obj:
    """A new discount of the coupon on the subscription (the coupon counts one redemption)."""
    coupon = ctx.store.get(coupon_id)
    if coupon is None or coupon.get("object") != "coupon" or coupon.get("deleted"):
        raise resource_missing("coupon", coupon_id, param)
    now = ctx.now(subscription["test_clock"])
    if not _coupon_valid(coupon, now):
        raise StripeError(400, f"Coupon expired: {coupon_id}", param=param, code="coupon_expired")
    if coupon["amount_off"] is not None and coupon["currency"] != subscription["currency"]:
        raise invalid_request(
            f"The coupon {coupon_id} is in {coupon['currency']}, but this subscription is "
            f"billed in {subscription['currency']}: an amount_off coupon must be in the "
            "currency it is applied in.",
            param=param,
        )
    coupon["times_redeemed"] += 1
    coupon["valid"] = _coupon_valid(coupon, now)
    ctx.store.touch(coupon)
    months = coupon["duration_in_months"]
    return ctx.store.add(
        {
            "id": new_id("di"),
            "object": "discount",
            "checkout_session": None,
            "customer": subscription["customer"],
            "end": add_interval(now, "month", months)
            if coupon["duration"] == "repeating"
            else None,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": None,
            "start": now,
            "subscription": subscription["id"],
            "subscription_item": None,
            "source": {"coupon": coupon_id, "type": "coupon"},
            "customer_account": None,
            # The terms as redeemed: deleting the coupon later does not change them.
            "_terms": {
                "percent_off": coupon["percent_off"],
                "amount_off": coupon["amount_off"],
                "duration": coupon["duration"],
                "products": list(coupon.get("_applies_to") or []),
            },
        }
    )


def subscription_discounts_set(ctx: Context, subscription: Obj, value: Any) -> None:
    """``discounts`` of a subscription create or update: a populated list replaces the
    discounts, ``""`` clears them, an empty list leaves them as they are."""
    if value == []:
        return
    kept: list[str] = []
    if value != UNSET:
        current = set(subscription["discounts"])
        for index, spec in enumerate(value):
            where = f"discounts[{index}]"
            if spec.get("promotion_code"):
                raise invalid_request(
                    "Promotion codes are not emulated.", param=f"{where}[promotion_code]"
                )
            if sum(1 for key in ("coupon", "discount") if spec.get(key)) != 1:
                raise invalid_request(
                    f"You must pass exactly one of coupon, discount or promotion_code in {where}.",
                    param=where,
                )
            if spec.get("discount"):
                if spec["discount"] not in current:
                    raise resource_missing("discount", spec["discount"], f"{where}[discount]")
                kept.append(spec["discount"])
                continue
            kept.append(_redeem(ctx, subscription, spec["coupon"], f"{where}[coupon]")["id"])
    if len(kept) != len(set(kept)):
        raise invalid_request("The same discount cannot be applied twice.", param="discounts")
    for dropped in set(subscription["discounts"]) - set(kept):
        discount = ctx.store.get(dropped)
        if discount is not None:
            discount["_removed"] = True
            ctx.store.touch(discount)
    subscription["discounts"] = kept
    ctx.store.touch(subscription)


def subscription_discount_terms(store: Store, subscription: Obj, now: int) -> list[Obj]:
    """The discounts an invoice of the subscription made at ``now`` carries: those not
    ended (a repeating one ends ``duration_in_months`` after it started)."""
    terms = []
    for discount_id in subscription["discounts"]:
        discount = store.get(discount_id)
        if discount is None or (discount["end"] is not None and now >= discount["end"]):
            continue
        terms.append({"discount": discount_id, **discount["_terms"]})
    return terms


def subscription_discount_ends(store: Store, subscription: Obj) -> list[int]:
    """When the subscription's repeating discounts end (a test clock removes them then)."""
    ends = []
    for discount_id in subscription["discounts"]:
        found = store.get(discount_id)
        if found is not None and found["end"] is not None:
            ends.append(found["end"])
    return ends


def subscription_discounts_expire(
    ctx: Context, subscription: Obj, now: int, *, announce: bool = True
) -> None:
    """Discounts that have ended leave the subscription (``customer.subscription.updated``;
    at a renewal, the renewal's own event says it)."""
    live = [
        discount_id
        for discount_id in subscription["discounts"]
        if (found := ctx.store.get(discount_id)) is not None
        and (found["end"] is None or now < found["end"])
    ]
    if live != subscription["discounts"]:
        before = ctx.snapshot(subscription)
        subscription["discounts"] = live
        ctx.store.touch(subscription)
        if announce:
            ctx.emit("customer.subscription.updated", subscription, before)


def subscription_once_discounts_use(ctx: Context, invoice: Obj) -> None:
    """A ``once`` discount applies to one invoice: the first with a line it discounts."""
    subscription_id = ((invoice["parent"] or {}).get("subscription_details") or {}).get(
        "subscription"
    )
    subscription = ctx.store.get(subscription_id or "")
    if subscription is None:
        return
    used = {
        amount["discount"]
        for amount in invoice["total_discount_amounts"]
        if amount["amount"] > 0
        and (terms := _terms_of(invoice, amount["discount"]))
        and terms["duration"] == "once"
    }
    if used:
        subscription["discounts"] = [d for d in subscription["discounts"] if d not in used]
        ctx.store.touch(subscription)


def _terms_of(invoice: Obj, discount_id: str) -> Obj | None:
    return next(
        (t for t in invoice.get("_discount_terms") or [] if t["discount"] == discount_id), None
    )


def discount_amounts(lines: list[Obj], terms: list[Obj]) -> list[Obj]:
    """Each discount's amount off the discountable lines (prorations are not), in turn on
    what the previous ones left: a percentage rounded half up to the minor unit, a fixed
    amount at most what is left. Each amount is shared out over the lines it applies to in
    proportion to their amounts (the remainder to the last), as ``discount_amounts``."""
    for line in lines:
        line["discount_amounts"] = []
    totals = []
    left = {line["id"]: line["amount"] for line in lines}
    for term in terms:
        eligible = [
            line
            for line in lines
            if line["discountable"]
            and left[line["id"]] > 0
            and (not term["products"] or _line_product(line) in term["products"])
        ]
        base = sum(left[line["id"]] for line in eligible)
        if term["percent_off"] is not None:
            amount = int(
                (Decimal(base) * Decimal(str(term["percent_off"])) / 100).quantize(
                    Decimal(1), rounding=ROUND_HALF_UP
                )
            )
        else:
            amount = min(term["amount_off"], base)
        shared = 0
        for index, line in enumerate(eligible):
            share = (
                amount - shared if index == len(eligible) - 1 else amount * left[line["id"]] // base
            )
            shared += share
            left[line["id"]] -= share
            line["discount_amounts"].append({"amount": share, "discount": term["discount"]})
        totals.append({"amount": amount, "discount": term["discount"]})
    return totals


def _line_product(line: Obj) -> str | None:
    return ((line.get("pricing") or {}).get("price_details") or {}).get("product")


ROUTES = [
    route("POST", "/v1/coupons", coupon_create, P.CouponCreateParams),
    route("GET", "/v1/coupons", coupon_list, P.CouponListParams),
    route("GET", "/v1/coupons/{coupon}", coupon_retrieve, P.CouponRetrieveParams),
    route("POST", "/v1/coupons/{coupon}", coupon_update, P.CouponModifyParams),
    route("DELETE", "/v1/coupons/{coupon}", coupon_delete, P.CouponDeleteParams),
]
