"""The life of a subscription between requests: items and their periods, the invoice of a
period, renewal, trial notices, ending, and item changes with their prorations. Subscription
endpoints, subscription items, previews and test clocks all go through these functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stripe_emulator.context import Context
from stripe_emulator.errors import invalid_request, negative, resource_missing
from stripe_emulator.ids import new_id
from stripe_emulator.store import Obj, Store
from stripe_emulator.timeutil import DAY, add_interval

from .catalog import price_create
from .common import assign
from .coupons import subscription_discount_ends, subscription_discounts_expire
from .invoice_items import invoice_item_add
from .invoicing import (
    AUTO_FINALIZE_DELAY,
    invoice_add_line,
    invoice_build,
    invoice_collect,
    invoice_finalize,
    invoice_line,
    invoice_mark_uncollectible,
    invoice_open,
    invoice_pull_pending,
    invoice_retries_exhausted,
    invoice_subscription,
    invoice_void_now,
    pending_update_clear,
)
from .pricing import Proration, item_amount, line_description, product_name, prorations

TRIAL_WILL_END_NOTICE = 3 * DAY
# ``invoice.upcoming`` goes out "a few days prior to the renewal", as many as the account's
# "Upcoming renewal events" setting says; the emulator's account uses 7.
UPCOMING_RENEWAL_NOTICE = 7 * DAY
ENDED = ("canceled", "incomplete_expired")


# Items and periods ------------------------------------------------------------------------


def subscription_items(store: Store, subscription: Obj) -> list[Obj]:
    """Items in the order they were added."""
    return list(
        reversed(
            store.select("subscription_item", lambda i: i["subscription"] == subscription["id"])
        )
    )


def subscription_period(store: Store, subscription: Obj) -> tuple[int, int]:
    first = subscription_items(store, subscription)[0]
    return first["current_period_start"], first["current_period_end"]


def set_period(ctx: Context, subscription: Obj, start: int, end: int) -> None:
    for item in subscription_items(ctx.store, subscription):
        item["current_period_start"], item["current_period_end"] = start, end
        ctx.store.touch(item)


def recurring_price(ctx: Context, spec: dict[str, Any], param: str) -> Obj:
    if "price_data" in spec:
        data = spec["price_data"]
        return price_create(
            ctx,
            {
                "currency": data["currency"],
                "product": data["product"],
                "recurring": data["recurring"],
                "unit_amount": data.get("unit_amount", 0),
            },
        )
    price_id = spec.get("price") or spec.get("plan")
    if not price_id:
        raise invalid_request(f"Missing required param: {param}[price].", param=f"{param}[price]")
    price = ctx.store.get(price_id)
    if price is None or price.get("object") != "price":
        raise resource_missing("price", price_id, f"{param}[price]")
    if price["type"] != "recurring":
        raise invalid_request(
            "The price specified is set to `type=one_time` but this field only accepts prices "
            "with `type=recurring`.",
            param=f"{param}[price]",
        )
    return price


def items_check(prices: list[Obj], specs: list[dict[str, Any]], param: str) -> None:
    """What Stripe refuses in a subscription's items as they will be: a negative quantity,
    the same price twice, prices of different intervals or currencies."""
    for index, spec in enumerate(specs):
        negative(spec.get("quantity"), f"{param}[{index}][quantity]")
    seen: set[str] = set()
    for price in prices:
        if price["id"] in seen:
            raise invalid_request(
                f"Cannot add multiple subscription items with the same price: {price['id']}.",
                param=param,
            )
        seen.add(price["id"])
    intervals = {(p["recurring"]["interval"], p["recurring"]["interval_count"]) for p in prices}
    if len(intervals) > 1 or len({p["currency"] for p in prices}) > 1:
        raise invalid_request(
            "All prices on a subscription must have the same currency and billing interval.",
            param=param,
        )


def proration_date_check(store: Store, subscription: Obj, params: dict[str, Any]) -> None:
    """A ``proration_date`` must fall within the subscription's current period."""
    at = params.get("proration_date")
    if at is None:
        return
    start, end = subscription_period(store, subscription)
    if not start <= at <= end:
        raise invalid_request(
            "The proration_date must be within the current billing period of the "
            f"subscription ({start} to {end}).",
            param="proration_date",
        )


def item_new(
    ctx: Context, subscription: Obj, price: Obj, spec: dict[str, Any], period: tuple[int, int]
) -> Obj:
    item: Obj = {
        "id": new_id("si"),
        "object": "subscription_item",
        "created": ctx.now(subscription["test_clock"]),
        "discounts": [],
        "metadata": dict(spec.get("metadata") or {}),
        "price": price["id"],
        "subscription": subscription["id"],
        "tax_rates": [],
        "current_period_start": period[0],
        "current_period_end": period[1],
        "billing_thresholds": None,
    }
    if price["recurring"]["usage_type"] == "licensed":
        item["quantity"] = spec.get("quantity", 1)
    return ctx.store.add(item)


# Invoicing a period ----------------------------------------------------------------------


def cycle_invoice(
    ctx: Context, subscription: Obj, reason: str, period: tuple[int, int], trial: bool
) -> Obj:
    """A draft with one line per item for ``period`` plus the subscription's pending items."""
    customer = ctx.fetch("customer", subscription["customer"])
    invoice = invoice_build(
        ctx,
        customer,
        billing_reason=reason,
        currency=subscription["currency"],
        subscription=subscription,
        period=period,
    )
    for item in subscription_items(ctx.store, subscription):
        price = ctx.fetch("price", item["price"])
        quantity = item.get("quantity")
        invoice_add_line(
            invoice,
            invoice_line(
                invoice,
                amount=0 if trial else item_amount(price, quantity),
                description=f"Trial period for {product_name(ctx.store, price)}"
                if trial
                else line_description(ctx.store, price, quantity),
                price=price,
                quantity=quantity,
                period=(item["current_period_start"], item["current_period_end"]),
                subscription_id=subscription["id"],
                subscription_item_id=item["id"],
                metadata=item["metadata"],
            ),
        )
    return invoice


def invoice_now(ctx: Context, subscription: Obj, invoice: Obj, *, collect: bool = True) -> None:
    """Store, finalize and (for automatic collection) charge a subscription invoice at once;
    without ``collect`` (``payment_behavior=default_incomplete``) it is left open, unpaid."""
    subscription["latest_invoice"] = invoice["id"]
    ctx.store.touch(subscription)
    invoice["auto_advance"] = False
    invoice_pull_pending(ctx, invoice, subscription["id"])
    invoice_open(ctx, invoice)
    invoice_finalize(ctx, invoice)
    if (
        collect
        and invoice["status"] == "open"
        and invoice["collection_method"] == "charge_automatically"
    ):
        invoice_collect(ctx, invoice)


def subscription_cycle(ctx: Context, subscription: Obj) -> None:
    """At the period end: cancel if asked to, else start the next period and draft its invoice."""
    start, end = subscription_period(ctx.store, subscription)
    if subscription["cancel_at"] and subscription["cancel_at"] <= end:
        subscription_end(
            ctx, subscription, reason="cancellation_requested", at=subscription["cancel_at"]
        )
        return
    before = ctx.snapshot(subscription)
    price = ctx.fetch("price", subscription_items(ctx.store, subscription)[0]["price"])
    recurring = price["recurring"]
    anchor_day = datetime.fromtimestamp(subscription["billing_cycle_anchor"], UTC).day
    next_end = add_interval(
        end, recurring["interval"], recurring["interval_count"], anchor_day=anchor_day
    )
    set_period(ctx, subscription, end, next_end)
    if subscription["status"] == "trialing":
        subscription["status"] = "active"
    subscription_discounts_expire(
        ctx, subscription, ctx.now(subscription["test_clock"]), announce=False
    )
    invoice = cycle_invoice(ctx, subscription, "subscription_cycle", (start, end), trial=False)
    invoice["automatically_finalizes_at"] = end + AUTO_FINALIZE_DELAY
    subscription["latest_invoice"] = invoice["id"]
    ctx.store.touch(subscription)
    ctx.emit("customer.subscription.updated", subscription, before)
    # The pending items are on the draft before it is announced: ``invoice.created`` carries them.
    invoice_pull_pending(ctx, invoice, subscription["id"])
    invoice_open(ctx, invoice)


def subscription_trial_will_end(ctx: Context, subscription: Obj) -> None:
    subscription["_trial_will_end_sent"] = True
    ctx.store.touch(subscription)
    ctx.emit("customer.subscription.trial_will_end", subscription)


def subscription_end(
    ctx: Context, subscription: Obj, *, reason: str, at: int | None = None
) -> None:
    now = at if at is not None else ctx.now(subscription["test_clock"])
    before = ctx.snapshot(subscription)
    subscription["status"] = "canceled"
    subscription["ended_at"] = now
    subscription["canceled_at"] = subscription["canceled_at"] or now
    subscription["cancellation_details"]["reason"] = reason
    ctx.store.touch(subscription)
    ctx.emit("customer.subscription.deleted", subscription, before)


def invoice_collect_automatically(ctx: Context, invoice: Obj) -> None:
    """Stripe's own attempt to collect an invoice (a renewal finalized, or a retry coming
    due); after the schedule's last retry fails, what the account's settings say: the
    invoice left open or marked uncollectible, the subscription canceled, ``unpaid`` or
    left ``past_due``."""
    subscription = invoice_subscription(ctx.store, invoice)
    if (
        subscription is not None
        and subscription["status"] in ENDED
        and invoice.get("_automatic_attempts")
    ):
        invoice["next_payment_attempt"] = None  # a canceled subscription is not retried
        ctx.store.touch(invoice)
        return
    invoice_collect(ctx, invoice, automatic=True)
    if not invoice_retries_exhausted(ctx, invoice):
        return
    if ctx.emulator.retries_final_invoice == "uncollectible":
        invoice_mark_uncollectible(ctx, invoice)
    if subscription is None or subscription["status"] in ENDED:
        return
    final = ctx.emulator.retries_final_status
    if final == "canceled":
        subscription_end(ctx, subscription, reason="payment_failed")
    elif final == "unpaid" and subscription["status"] != "unpaid":
        before = ctx.snapshot(subscription)
        subscription["status"] = "unpaid"
        ctx.store.touch(subscription)
        ctx.emit("customer.subscription.updated", subscription, before)


def invoice_retry_due(store: Store, invoice: Obj) -> int | None:
    """When the next automatic retry of an invoice is due, if one is scheduled."""
    if invoice["status"] != "open" or not invoice.get("_automatic_attempts"):
        return None
    return invoice["next_payment_attempt"]


def subscription_pending_update_expire(ctx: Context, subscription: Obj) -> None:
    """Nobody paid a pending update's invoice in time: Stripe voids the invoice and drops
    the update, and says so with ``customer.subscription.pending_update_expired``."""
    pending = subscription.get("_pending_apply") or {}
    invoice = ctx.store.get(pending.get("invoice") or "")
    if invoice is not None and invoice["status"] == "open":
        subscription.pop("_pending_apply", None)  # voiding it must not announce an update
        invoice_void_now(ctx, invoice)
    pending_update_clear(ctx, subscription)
    ctx.emit("customer.subscription.pending_update_expired", subscription)


def subscription_due_actions(store: Store, subscription: Obj) -> list[tuple[int, str]]:
    """What a test clock must run for this subscription, and when."""
    if subscription["status"] in ENDED:
        return []
    actions = []
    if subscription.get("pending_update"):  # before a renewal due at the same moment
        actions.append((subscription["pending_update"]["expires_at"], "pending_update_expire"))
    start, end = subscription_period(store, subscription)
    if subscription["cancel_at"] and subscription["cancel_at"] < end:
        actions.append((subscription["cancel_at"], "cancel"))
    else:
        actions.append((end, "cycle"))
        notice = end - UPCOMING_RENEWAL_NOTICE
        if (
            not subscription["cancel_at_period_end"]
            and subscription["collection_method"] == "charge_automatically"
            and notice > start
            and subscription.get("_upcoming_sent_for") != end
        ):
            actions.append((notice, "upcoming"))
    actions += [(end, "discount_end") for end in subscription_discount_ends(store, subscription)]
    trial_end = subscription["trial_end"]
    if (
        subscription["status"] == "trialing"
        and trial_end
        and not subscription.get("_trial_will_end_sent")
    ):
        notice = trial_end - TRIAL_WILL_END_NOTICE
        if notice > subscription["trial_start"]:
            actions.append((notice, "trial_will_end"))
    return actions


def _prorate(
    ctx: Context,
    subscription: Obj,
    prorations: list[Proration],
    behavior: str,
    *,
    collect: bool = True,
) -> None:
    if behavior == "none" or not prorations:
        return
    customer = ctx.fetch("customer", subscription["customer"])
    for proration in prorations:
        invoice_item_add(
            ctx,
            customer,
            amount=proration.amount,
            currency=subscription["currency"],
            description=proration.description,
            price=proration.price,
            quantity=proration.quantity,
            period=proration.period,
            subscription_id=subscription["id"],
            proration=True,
        )
    if behavior == "always_invoice":
        invoice = invoice_build(
            ctx,
            customer,
            billing_reason="subscription_update",
            currency=subscription["currency"],
            subscription=subscription,
        )
        invoice_now(ctx, subscription, invoice, collect=collect)


@dataclass(frozen=True)
class _ItemChange:
    spec: dict[str, Any]
    item: Obj | None  # None: a new item
    price: Obj | None  # None: the item is deleted


def _plan_item_changes(
    ctx: Context,
    subscription: Obj,
    changes: list[dict[str, Any]],
    param: str,
    items_param: str,
) -> list[_ItemChange]:
    """Check every change before any is made, so a bad one leaves the subscription as it was."""
    items = {item["id"]: item for item in subscription_items(ctx.store, subscription)}
    plan = []
    for index, spec in enumerate(changes):
        where = f"{param}[{index}]"
        item = items.get(spec["id"]) if "id" in spec else None
        if "id" in spec and item is None:
            raise invalid_request(
                f"Invalid {where}[id]: no such subscription item on this subscription.",
                param=f"{where}[id]",
            )
        if spec.get("deleted"):
            if item is None:
                raise invalid_request(f"Missing required param: {where}[id].", param=f"{where}[id]")
            plan.append(_ItemChange(spec, item, None))
            continue
        repriced = item is None or "price" in spec or "price_data" in spec
        price = recurring_price(ctx, spec, where) if repriced else ctx.fetch("price", item["price"])
        plan.append(_ItemChange(spec, item, price))
    removed = sum(change.price is None for change in plan)
    added = sum(change.item is None for change in plan)
    if len(items) - removed + added < 1:
        raise invalid_request("A subscription must have at least one item.", param=param)
    changed = {change.item["id"] for change in plan if change.item is not None}
    kept = [ctx.fetch("price", i["price"]) for i in items.values() if i["id"] not in changed]
    after = kept + [change.price for change in plan if change.price is not None]
    items_check(after, changes, items_param)
    return plan


def item_changes_apply(
    ctx: Context,
    subscription: Obj,
    changes: list[dict[str, Any]],
    *,
    behavior: str,
    at: int,
    param: str,
    items_param: str | None = None,
    collect: bool = True,
) -> list[Obj]:
    """Add, reprice, requantify or delete items; returns the items touched. A refusal of
    the resulting set of items names ``items_param`` (``price`` for one item's endpoint)."""
    plan = _plan_item_changes(ctx, subscription, changes, param, items_param or param)
    period = subscription_period(ctx.store, subscription)
    touched = []
    pending: list[Proration] = []
    for change in plan:
        spec, item, price = change.spec, change.item, change.price
        if price is None and item is not None:  # deleted
            old = (ctx.fetch("price", item["price"]), item.get("quantity"))
            pending += prorations(ctx.store, subscription, period, old, None, at)
            ctx.store.remove(item["id"])
        elif price is not None and item is None:  # added
            item = item_new(ctx, subscription, price, spec, period)
            new = (price, item.get("quantity", 0))
            pending += [
                proration
                for proration in prorations(ctx.store, subscription, period, (price, 0), new, at)
                if proration.amount > 0
            ]
        elif price is not None and item is not None:  # repriced, requantified or relabelled
            old = (ctx.fetch("price", item["price"]), item.get("quantity"))
            item["price"] = price["id"]
            if "quantity" in spec and "quantity" in item:
                item["quantity"] = spec["quantity"]
            if "metadata" in spec:
                assign(item, {"metadata": spec["metadata"]}, ())
            if (price["id"], item.get("quantity")) != (old[0]["id"], old[1]):
                new = (price, item.get("quantity"))
                pending += prorations(ctx.store, subscription, period, old, new, at)
            ctx.store.touch(item)
        if item is not None:
            touched.append(item)
    _prorate(ctx, subscription, pending, behavior, collect=collect)
    return touched
