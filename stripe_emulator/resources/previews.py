"""``POST /v1/invoices/create_preview``: the next invoice of a customer or subscription,
with the prorations of proposed changes, computed without changing anything."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.errors import invalid_request
from stripe_emulator.ids import random_token
from stripe_emulator.routing import route
from stripe_emulator.store import Obj
from stripe_emulator.timeutil import add_interval

from .invoicing import (
    AUTO_FINALIZE_DELAY,
    invoice_add_line,
    invoice_build,
    invoice_item_line,
    invoice_line,
    pending_invoice_items,
)
from .pricing import item_amount, line_description, prorations
from .subscription_lifecycle import recurring_price, subscription_items, subscription_period


def invoice_create_preview(ctx: Context, params: dict[str, Any]) -> Obj:
    """The invoice Stripe would issue next, computed and not stored."""
    if params.get("subscription"):
        return _subscription_preview(ctx, params)
    if params.get("subscription_details"):
        return _new_subscription_preview(ctx, params)
    customer = ctx.fetch("customer", params.get("customer"), param="customer")
    preview = invoice_build(
        ctx,
        customer,
        billing_reason="manual",
        currency=params.get("currency") or customer["currency"] or "usd",
        invoice_id=f"upcoming_{random_token(24)}",
    )
    for item in pending_invoice_items(ctx.store, customer["id"], None):
        invoice_add_line(preview, invoice_item_line(preview, item, ctx.store))
    return _with_balance(preview, customer)


def _new_subscription_preview(ctx: Context, params: dict[str, Any]) -> Obj:
    """The first invoice of a subscription the customer does not have yet."""
    details = params["subscription_details"]
    customer = ctx.fetch("customer", params.get("customer"), param="customer")
    specs = details.get("items") or []
    prices = [
        recurring_price(ctx, spec, f"subscription_details[items][{i}]")
        for i, spec in enumerate(specs)
    ]
    if not prices:
        raise invalid_request(
            "Missing required param: subscription_details[items].",
            param="subscription_details[items]",
        )
    preview = invoice_build(
        ctx,
        customer,
        billing_reason="subscription_create",
        currency=prices[0]["currency"],
        invoice_id=f"upcoming_{random_token(24)}",
    )
    now = ctx.now(customer["test_clock"])
    for price, spec in zip(prices, specs, strict=True):
        recurring = price["recurring"]
        end = add_interval(now, recurring["interval"], recurring["interval_count"])
        quantity = spec.get("quantity", 1)
        invoice_add_line(
            preview,
            invoice_line(
                preview,
                amount=item_amount(price, quantity),
                description=line_description(ctx.store, price, quantity),
                price=price,
                quantity=quantity,
                period=(now, end),
            ),
        )
    return _with_balance(preview, customer)


def _subscription_preview(ctx: Context, params: dict[str, Any]) -> Obj:
    """The next invoice of a subscription, with the prorations of proposed item changes."""
    details = params.get("subscription_details") or {}
    subscription = ctx.fetch("subscription", params["subscription"], param="subscription")
    customer = ctx.fetch("customer", subscription["customer"])
    start, end = subscription_period(ctx.store, subscription)
    at = details.get("proration_date") or ctx.now(subscription["test_clock"])
    behavior = details.get("proration_behavior", "create_prorations")
    if details.get("trial_end") == "now" and subscription["status"] == "trialing":
        # Ending the trial now starts a paid period now: nothing to prorate, the new
        # period's price is the invoice (as the update with trial_end=now issues it).
        start = end = at
        behavior = "none"
    preview = invoice_build(
        ctx,
        customer,
        billing_reason="upcoming",
        currency=subscription["currency"],
        subscription=subscription,
        period=(start, end),
        invoice_id=f"upcoming_{random_token(24)}",
    )
    for item in pending_invoice_items(ctx.store, customer["id"], subscription["id"]):
        invoice_add_line(preview, invoice_item_line(preview, item, ctx.store))
    planned = {
        item["id"]: (ctx.fetch("price", item["price"]), item.get("quantity"))
        for item in subscription_items(ctx.store, subscription)
    }
    for index, change in enumerate(details.get("items") or []):
        where = f"subscription_details[items][{index}]"
        old = planned.get(change.get("id", ""))
        if change.get("id") and old is None:
            raise invalid_request(
                f"Invalid {where}[id]: no such subscription item on this subscription.",
                param=f"{where}[id]",
            )
        new_price = (
            recurring_price(ctx, change, where)
            if ("price" in change or "price_data" in change)
            else (old or (None, None))[0]
        )
        new = (
            None
            if change.get("deleted")
            else (new_price, change.get("quantity", (old or (None, 1))[1]))
        )
        if behavior != "none" and old is not None:
            for proration in prorations(ctx.store, subscription, (start, end), old, new, at):
                invoice_add_line(
                    preview,
                    invoice_line(
                        preview,
                        amount=proration.amount,
                        description=proration.description,
                        price=proration.price,
                        quantity=proration.quantity,
                        period=proration.period,
                        subscription_id=subscription["id"],
                        proration=True,
                    ),
                )
        planned[change.get("id") or f"new_{index}"] = new  # type: ignore[assignment]
    cancelling = details.get("cancel_at_period_end", subscription["cancel_at_period_end"])
    # With ``always_invoice`` the prorations are invoiced at once: that invoice is the
    # preview (its prorations and the pending items it takes), not the next renewal.
    invoiced_now = behavior == "always_invoice" and any(
        _is_proration(line) for line in preview["lines"]["data"]
    )
    if invoiced_now:
        preview["billing_reason"] = "subscription_update"
        preview["period_start"] = preview["period_end"] = at
    if not cancelling and not invoiced_now:
        for price, quantity in (value for value in planned.values() if value is not None):
            recurring = price["recurring"]
            invoice_add_line(
                preview,
                invoice_line(
                    preview,
                    amount=item_amount(price, quantity),
                    description=line_description(ctx.store, price, quantity),
                    price=price,
                    quantity=quantity,
                    period=(
                        end,
                        add_interval(end, recurring["interval"], recurring["interval_count"]),
                    ),
                    subscription_id=subscription["id"],
                ),
            )
    return _with_balance(preview, customer)


def _is_proration(line: Obj) -> bool:
    return bool(((line["parent"] or {}).get("subscription_item_details") or {}).get("proration"))


def _with_balance(preview: Obj, customer: Obj) -> Obj:
    """The customer's balance meets the preview as it would meet the invoice: a credit
    lowers ``amount_due``, and what is left over stays credit (``ending_balance``)."""
    starting = customer["balance"]
    net = preview["total"] + starting
    preview["starting_balance"] = starting
    preview["ending_balance"] = min(net, 0)
    preview["amount_due"] = max(net, 0)
    preview["amount_remaining"] = preview["amount_due"]
    return preview


def subscription_upcoming_notice(ctx: Context, subscription: Obj) -> None:
    """``invoice.upcoming``, days before a renewal: the invoice as it would be now. It is
    not an invoice yet, so (as Stripe says of this event) it has no id."""
    _, end = subscription_period(ctx.store, subscription)
    subscription["_upcoming_sent_for"] = end
    ctx.store.touch(subscription)
    upcoming = _subscription_preview(ctx, {"subscription": subscription["id"]})
    upcoming["id"] = None
    upcoming["lines"]["url"] = "/v1/invoices/upcoming/lines"
    for line in upcoming["lines"]["data"]:
        line["invoice"] = None
    upcoming["next_payment_attempt"] = end + AUTO_FINALIZE_DELAY
    ctx.emit("invoice.upcoming", upcoming)


ROUTES = [
    route(
        "POST", "/v1/invoices/create_preview", invoice_create_preview, P.InvoiceCreatePreviewParams
    ),
]
