"""Products and prices (lookup keys, licensed and metered recurring prices)."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.currencies import currency_check
from stripe_emulator.errors import invalid_request, negative, only_one_of
from stripe_emulator.ids import new_id
from stripe_emulator.render import includable, list_object, paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj, Store

from .common import assign, created_filter, deleted

_PRODUCT_FIELDS = (
    "active",
    "description",
    "images",
    "name",
    "shippable",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "url",
)


def product_create(ctx: Context, params: dict[str, Any]) -> Obj:
    product_id = params.get("id") or new_id("prod")
    if ctx.store.get(product_id):
        raise invalid_request("Product already exists.", param="id", code="resource_already_exists")
    now = ctx.now()
    product: Obj = {
        "id": product_id,
        "object": "product",
        "active": True,
        "created": now,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [
            {"name": feature["name"]} for feature in params.get("marketing_features", [])
        ],
        "metadata": {},
        "name": params["name"],
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "unit_label": None,
        "updated": now,
        "url": None,
        "type": params.get("type", "service"),
    }
    assign(product, params, _PRODUCT_FIELDS)
    ctx.store.add(product)
    ctx.emit("product.created", product)
    if "default_price_data" in params:
        price = _price_add(ctx, {**params["default_price_data"], "product": product_id})
        product["default_price"] = price["id"]
    return product


def product_retrieve(ctx: Context, params: dict[str, Any], product: str) -> Obj:
    return ctx.fetch("product", product)


def product_update(ctx: Context, params: dict[str, Any], product: str) -> Obj:
    found = ctx.fetch("product", product)
    before = ctx.snapshot(found)
    assign(found, params, _PRODUCT_FIELDS)
    if "default_price" in params:
        if params["default_price"]:
            price = ctx.fetch("price", params["default_price"], param="default_price")
            if price["product"] != product:
                raise invalid_request(
                    "The price must belong to this product.", param="default_price"
                )
        found["default_price"] = params["default_price"] or None
    if "marketing_features" in params:
        found["marketing_features"] = [
            {"name": feature["name"]} for feature in params["marketing_features"] or []
        ]
    found["updated"] = ctx.now()
    ctx.store.touch(found)
    ctx.emit("product.updated", found, before)
    return found


def product_delete(ctx: Context, params: dict[str, Any], product: str) -> Obj:
    found = ctx.fetch("product", product)
    if ctx.store.select("price", lambda p: p["product"] == product):
        raise invalid_request(
            "This product cannot be deleted because it has one or more user-created prices."
        )
    ctx.emit("product.deleted", found)
    tombstone = deleted(found)
    ctx.store.replace(tombstone)
    return tombstone


def product_list(ctx: Context, params: dict[str, Any]) -> Obj:
    ids = params.get("ids")
    products = ctx.store.select(
        "product",
        lambda p: (
            params.get("active", p["active"]) == p["active"]
            and (ids is None or p["id"] in ids)
            and created_filter(p, params.get("created"))
        ),
    )
    return paginate(products, params, "/v1/products")


def product_feature_list(ctx: Context, params: dict[str, Any], product: str) -> Obj:
    """Entitlement features are not emulated: every product has none."""
    ctx.fetch("product", product)
    return list_object(f"/v1/products/{product}/features", [])


# Stripe's longest billing interval is a year, in any unit.
MAX_INTERVAL_COUNT = {"day": 365, "week": 52, "month": 12, "year": 1}


def _price_check(ctx: Context, params: dict[str, Any]) -> None:
    """What Stripe refuses in a new price, before anything is written."""
    only_one_of(params, "unit_amount", "unit_amount_decimal")
    negative(params.get("unit_amount"), "unit_amount")
    if str(params.get("unit_amount_decimal", "0")).startswith("-"):
        raise invalid_request(
            "Invalid unit_amount_decimal: must be greater than or equal to 0.",
            param="unit_amount_decimal",
        )
    currency_check(params["currency"])
    recurring = params.get("recurring")
    if recurring is None:
        return
    count = recurring.get("interval_count", 1)
    if not 1 <= count <= MAX_INTERVAL_COUNT[recurring["interval"]]:
        raise invalid_request(
            "The maximum billing interval is one year (1 year, 12 months, 52 weeks or 365 "
            "days), and interval_count must be at least 1.",
            param="recurring[interval_count]",
        )
    if recurring.get("usage_type") == "metered":
        if not recurring.get("meter"):
            raise invalid_request(
                "Metered prices must be backed by a billing meter: pass recurring[meter] "
                "(required since API version 2025-03-31).",
                param="recurring[meter]",
            )
        ctx.fetch(
            "billing.meter", recurring["meter"], label="billing meter", param="recurring[meter]"
        )
    elif recurring.get("meter"):
        raise invalid_request(
            "recurring[meter] can only be set on a price with recurring[usage_type]=metered.",
            param="recurring[meter]",
        )


def _price_add(ctx: Context, params: dict[str, Any]) -> Obj:
    _price_check(ctx, params)
    if "unit_amount" not in params and "unit_amount_decimal" not in params:
        raise invalid_request(
            "Missing required param: unit_amount (the emulator supports per-unit prices only).",
            param="unit_amount",
        )
    lookup_key = params.get("lookup_key")
    if lookup_key:
        holder = next(
            iter(ctx.store.select("price", lambda p: p["lookup_key"] == lookup_key)), None
        )
        if holder is not None:
            if not params.get("transfer_lookup_key"):
                raise invalid_request(
                    f"A price (`{holder['id']}`) already uses that lookup key.", param="lookup_key"
                )
            before = ctx.snapshot(holder)
            holder["lookup_key"] = None
            ctx.store.touch(holder)
            ctx.emit("price.updated", holder, before)
    unit_amount = params.get("unit_amount")
    if unit_amount is None:
        unit_amount = int(float(params["unit_amount_decimal"]))
    recurring = params.get("recurring")
    price: Obj = {
        "id": new_id("price"),
        "object": "price",
        "active": params.get("active", True),
        "billing_scheme": "per_unit",
        "created": ctx.now(),
        "currency": params["currency"].lower(),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": dict(params.get("metadata") or {}),
        "nickname": params.get("nickname"),
        "product": params["product"],
        "recurring": None
        if recurring is None
        else {
            "interval": recurring["interval"],
            "interval_count": recurring.get("interval_count", 1),
            "meter": recurring.get("meter"),
            "usage_type": recurring.get("usage_type", "licensed"),
            "trial_period_days": recurring.get("trial_period_days"),
        },
        "tax_behavior": params.get("tax_behavior", "unspecified"),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time" if recurring is None else "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(params.get("unit_amount_decimal", unit_amount)),
    }
    ctx.store.add(price)
    ctx.emit("price.created", price)
    return price


@includable("price", "currency_options")
def _price_currency_options(store: Store, price: Obj) -> Obj:
    """Only the price's own currency: multi-currency prices are not emulated."""
    return {
        price["currency"]: {
            "custom_unit_amount": None,
            "tax_behavior": price["tax_behavior"],
            "unit_amount": price["unit_amount"],
            "unit_amount_decimal": price["unit_amount_decimal"],
        }
    }


@includable("price", "tiers")
def _price_tiers(store: Store, price: Obj) -> None:
    """Per-unit prices have no tiers."""
    return None


def price_create(ctx: Context, params: dict[str, Any]) -> Obj:
    if "product_data" in params:
        product = product_create(ctx, params["product_data"])
        params = {**params, "product": product["id"]}
    elif "product" not in params:
        raise invalid_request("Missing required param: product.", param="product")
    else:
        ctx.fetch("product", params["product"], param="product")
    return _price_add(ctx, params)


def price_retrieve(ctx: Context, params: dict[str, Any], price: str) -> Obj:
    return ctx.fetch("price", price)


def price_update(ctx: Context, params: dict[str, Any], price: str) -> Obj:
    found = ctx.fetch("price", price)
    before = ctx.snapshot(found)
    if params.get("lookup_key"):
        holder = next(
            iter(ctx.store.select("price", lambda p: p["lookup_key"] == params["lookup_key"])), None
        )
        if holder is not None and holder["id"] != price:
            if not params.get("transfer_lookup_key"):
                raise invalid_request(
                    f"A price (`{holder['id']}`) already uses that lookup key.", param="lookup_key"
                )
            holder_before = ctx.snapshot(holder)
            holder["lookup_key"] = None
            ctx.store.touch(holder)
            ctx.emit("price.updated", holder, holder_before)
    assign(found, params, ("active", "lookup_key", "nickname", "tax_behavior"))
    ctx.store.touch(found)
    ctx.emit("price.updated", found, before)
    return found


def price_list(ctx: Context, params: dict[str, Any]) -> Obj:
    lookup_keys = params.get("lookup_keys")
    recurring = params.get("recurring") or {}

    def matches(price: Obj) -> bool:
        price_recurring = price["recurring"] or {}
        return (
            params.get("active", price["active"]) == price["active"]
            and params.get("product", price["product"]) == price["product"]
            and params.get("currency", price["currency"]) == price["currency"]
            and params.get("type", price["type"]) == price["type"]
            and (lookup_keys is None or price["lookup_key"] in lookup_keys)
            and all(price_recurring.get(key) == value for key, value in recurring.items())
            and created_filter(price, params.get("created"))
        )

    return paginate(ctx.store.select("price", matches), params, "/v1/prices")


ROUTES = [
    route("POST", "/v1/products", product_create, P.ProductCreateParams),
    route("GET", "/v1/products", product_list, P.ProductListParams),
    route("GET", "/v1/products/{product}", product_retrieve, P.ProductRetrieveParams),
    route("POST", "/v1/products/{product}", product_update, P.ProductModifyParams),
    route("DELETE", "/v1/products/{product}", product_delete, P.ProductDeleteParams),
    route(
        "GET", "/v1/products/{product}/features", product_feature_list, P.ProductListFeaturesParams
    ),
    route("POST", "/v1/prices", price_create, P.PriceCreateParams),
    route("GET", "/v1/prices", price_list, P.PriceListParams),
    route("GET", "/v1/prices/{price}", price_retrieve, P.PriceRetrieveParams),
    route("POST", "/v1/prices/{price}", price_update, P.PriceModifyParams),
]
