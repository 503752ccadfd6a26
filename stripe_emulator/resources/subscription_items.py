"""Subscription items as their own endpoint (add, reprice, remove one item)."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.errors import invalid_request, negative
from stripe_emulator.render import paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj

from .common import deleted
from .subscription_lifecycle import (
    ENDED,
    item_changes_apply,
    proration_date_check,
    subscription_items,
)


def _live_subscription(ctx: Context, subscription_id: Any) -> Obj:
    subscription = ctx.fetch("subscription", subscription_id, param="subscription")
    if subscription["status"] in ENDED:
        raise invalid_request(
            "This subscription is canceled and its items cannot change.", param="subscription"
        )
    return subscription


def _change(ctx: Context, subscription: Obj, change: dict[str, Any], params: dict[str, Any]) -> Obj:
    negative(params.get("quantity"), "quantity")
    proration_date_check(ctx.store, subscription, params)
    before = ctx.snapshot(subscription)
    [item] = item_changes_apply(
        ctx,
        subscription,
        [change],
        behavior=params.get("proration_behavior", "create_prorations"),
        at=params.get("proration_date") or ctx.now(subscription["test_clock"]),
        param="items",
        items_param="price",
    )
    ctx.store.touch(subscription)
    ctx.emit("customer.subscription.updated", subscription, before)
    return item


def subscription_item_create(ctx: Context, params: dict[str, Any]) -> Obj:
    subscription = _live_subscription(ctx, params.get("subscription"))
    change = {
        key: params[key] for key in ("price", "price_data", "quantity", "metadata") if key in params
    }
    return _change(ctx, subscription, change, params)


def subscription_item_retrieve(ctx: Context, params: dict[str, Any], item: str) -> Obj:
    return ctx.fetch("subscription_item", item, label="subscription item")


def subscription_item_update(ctx: Context, params: dict[str, Any], item: str) -> Obj:
    found = ctx.fetch("subscription_item", item, label="subscription item")
    subscription = _live_subscription(ctx, found["subscription"])
    change = {
        "id": item,
        **{
            key: params[key]
            for key in ("price", "price_data", "quantity", "metadata")
            if key in params
        },
    }
    return _change(ctx, subscription, change, params)


def subscription_item_delete(ctx: Context, params: dict[str, Any], item: str) -> Obj:
    found = ctx.fetch("subscription_item", item, label="subscription item")
    subscription = _live_subscription(ctx, found["subscription"])
    _change(ctx, subscription, {"id": item, "deleted": True}, params)
    return deleted(found)


def subscription_item_list(ctx: Context, params: dict[str, Any]) -> Obj:
    subscription = ctx.fetch("subscription", params["subscription"], param="subscription")
    items = list(reversed(subscription_items(ctx.store, subscription)))
    return paginate(items, params, "/v1/subscription_items")


ROUTES = [
    route(
        "POST", "/v1/subscription_items", subscription_item_create, P.SubscriptionItemCreateParams
    ),
    route("GET", "/v1/subscription_items", subscription_item_list, P.SubscriptionItemListParams),
    route(
        "GET",
        "/v1/subscription_items/{item}",
        subscription_item_retrieve,
        P.SubscriptionItemRetrieveParams,
    ),
    route(
        "POST",
        "/v1/subscription_items/{item}",
        subscription_item_update,
        P.SubscriptionItemModifyParams,
    ),
    route(
        "DELETE",
        "/v1/subscription_items/{item}",
        subscription_item_delete,
        P.SubscriptionItemDeleteParams,
    ),
]
