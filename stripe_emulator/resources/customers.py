"""Customers: CRUD, list by email, search, default payment method, tax ids."""

from __future__ import annotations

import re
from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.errors import invalid_request, resource_missing
from stripe_emulator.ids import new_id, random_token
from stripe_emulator.render import includable, list_object, paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj, Store

from .common import UNSET, address, assign, created_filter, deleted
from .payment_methods import (
    payment_method_attach,
    payment_method_check_attachable,
    payment_method_resolve,
)
from .subscription_lifecycle import ENDED, subscription_end

_FIELDS = ("balance", "description", "email", "name", "phone", "preferred_locales", "tax_exempt")
_SEARCH_CLAUSE = re.compile(
    r"""^\s*(email|name|phone|metadata\[['"]([^'"]+)['"]\])\s*:\s*['"]([^'"]*)['"]\s*$"""
)


def customer_create(ctx: Context, params: dict[str, Any]) -> Obj:
    clock_id = params.get("test_clock")
    if clock_id:
        ctx.fetch("test_helpers.test_clock", clock_id, label="test clock", param="test_clock")
    method = None
    if params.get("payment_method"):
        method = payment_method_resolve(ctx, params["payment_method"])
        payment_method_check_attachable(method, "")
    customer: Obj = {
        "id": new_id("cus"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": ctx.now(clock_id),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": random_token(8).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": clock_id,
    }
    assign(customer, params, _FIELDS)
    _apply_nested(customer, params)
    _check_default_payment_method(ctx, customer["id"], params, method)
    _set_default_payment_method(customer, params)
    ctx.store.add(customer)
    ctx.emit("customer.created", customer)
    if method is not None:
        payment_method_attach(ctx, method, customer)
    for index, tax_id in enumerate(params.get("tax_id_data", [])):
        _tax_id_add(ctx, customer, tax_id["type"], tax_id["value"], f"tax_id_data[{index}]")
    return customer


def _apply_nested(customer: Obj, params: dict[str, Any]) -> None:
    if "address" in params:
        customer["address"] = address(params["address"])
    if "shipping" in params:
        shipping = params["shipping"]
        customer["shipping"] = (
            None
            if shipping == UNSET
            else {
                "address": address(shipping["address"]),
                "name": shipping["name"],
                "phone": shipping.get("phone"),
            }
        )
    settings = params.get("invoice_settings") or {}
    if "footer" in settings:
        customer["invoice_settings"]["footer"] = settings["footer"] or None


def _check_default_payment_method(
    ctx: Context, customer_id: str, params: dict[str, Any], attaching: Obj | None
) -> None:
    """The default must be one of the customer's cards (or the one this request attaches)."""
    method_id = (params.get("invoice_settings") or {}).get("default_payment_method")
    if not method_id or (attaching is not None and attaching["id"] == method_id):
        return
    param = "invoice_settings[default_payment_method]"
    method = ctx.store.get(method_id)
    if method is None or method.get("object") != "payment_method":
        raise resource_missing("PaymentMethod", method_id, param)
    if method["customer"] != customer_id:
        raise invalid_request(
            f"The customer does not have a payment method with the ID {method_id}. "
            "The payment method must be attached to the customer.",
            param=param,
        )


def _set_default_payment_method(customer: Obj, params: dict[str, Any]) -> None:
    settings = params.get("invoice_settings") or {}
    if "default_payment_method" in settings:
        customer["invoice_settings"]["default_payment_method"] = (
            settings["default_payment_method"] or None
        )


def customer_retrieve(ctx: Context, params: dict[str, Any], customer: str) -> Obj:
    found = ctx.store.get(customer)
    if found is None or found.get("object") != "customer":
        raise resource_missing("customer", customer)
    return found  # a deleted customer answers its tombstone, as Stripe does


def customer_update(ctx: Context, params: dict[str, Any], customer: str) -> Obj:
    found = ctx.fetch("customer", customer)
    method = None
    if params.get("payment_method"):
        method = payment_method_resolve(ctx, params["payment_method"])
        payment_method_attach(ctx, method, found)
    _check_default_payment_method(ctx, customer, params, method)
    before = ctx.snapshot(found)
    assign(found, params, _FIELDS)
    _apply_nested(found, params)
    _set_default_payment_method(found, params)
    ctx.store.touch(found)
    ctx.emit("customer.updated", found, before)
    return found


def customer_delete(ctx: Context, params: dict[str, Any], customer: str) -> Obj:
    found = ctx.fetch("customer", customer)
    for subscription in ctx.store.select("subscription", lambda s: s["customer"] == customer):
        if subscription["status"] not in ENDED:
            subscription_end(ctx, subscription, reason="cancellation_requested")
    ctx.emit("customer.deleted", found)
    tombstone = deleted(found)
    ctx.store.replace(tombstone)
    return tombstone


def customer_list(ctx: Context, params: dict[str, Any]) -> Obj:
    customers = ctx.store.select(
        "customer",
        lambda c: (
            params.get("email", c["email"]) == c["email"]
            and params.get("test_clock", c["test_clock"]) == c["test_clock"]
            and created_filter(c, params.get("created"))
        ),
    )
    return paginate(customers, params, "/v1/customers")


def customer_search(ctx: Context, params: dict[str, Any]) -> Obj:
    """Stripe's search language for the clauses the portal uses, joined by AND."""
    clauses = []
    for clause in re.split(r"\s+AND\s+", params["query"].strip()):
        match = _SEARCH_CLAUSE.match(clause)
        if not match:
            raise invalid_request(
                "The emulator supports field:'value' clauses on email, name, phone and "
                "metadata['key'] "
                f"joined by AND; could not parse: {clause}",
                param="query",
            )
        clauses.append(match.groups())

    def matches(customer: Obj) -> bool:
        for field, metadata_key, value in clauses:
            actual = customer["metadata"].get(metadata_key) if metadata_key else customer.get(field)
            if actual != value:
                return False
        return True

    found = ctx.store.select("customer", matches)
    limit = params.get("limit", 10)
    return {
        "object": "search_result",
        "data": found[:limit],
        "has_more": len(found) > limit,
        "next_page": None,
        "url": "/v1/customers/search",
    }


# Tax ids -------------------------------------------------------------------------------


# Formats Stripe checks before it accepts a VAT number: the member state's prefix (EL for
# Greece, XI for Northern Ireland) then 2 to 13 letters or digits; the UK's GB + 9 or 12 digits.
_EU_VAT_PREFIXES = (
    "AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI"
)
_TAX_ID_FORMATS = {
    "eu_vat": re.compile(rf"^(?:{_EU_VAT_PREFIXES})[0-9A-Z]{{2,13}}$"),
    "gb_vat": re.compile(r"^GB(?:\d{9}|\d{12})$"),
}


def _tax_id_add(ctx: Context, customer: Obj, kind: str, value: str, param: str) -> Obj:
    value_param = f"{param}[value]" if param else "value"
    if not value:
        raise invalid_request("Invalid value for tax id.", param=value_param)
    pattern = _TAX_ID_FORMATS.get(kind)
    if pattern is not None and not pattern.match(value):
        raise invalid_request(
            f"Invalid value for {kind}.", param=value_param, code="tax_id_invalid"
        )
    tax_id = ctx.store.add(
        {
            "id": new_id("txi"),
            "object": "tax_id",
            "country": value[:2].upper() if kind.startswith("eu_") else None,
            "created": ctx.now(customer["test_clock"]),
            "customer": customer["id"],
            "livemode": False,
            "owner": {"customer": customer["id"], "type": "customer", "customer_account": None},
            "type": kind,
            "value": value,
            "verification": {"status": "pending", "verified_address": None, "verified_name": None},
            "customer_account": None,
        }
    )
    ctx.emit("customer.tax_id.created", tax_id)
    return tax_id


def customer_tax_id_create(ctx: Context, params: dict[str, Any], customer: str) -> Obj:
    found = ctx.fetch("customer", customer, param="customer")
    return _tax_id_add(ctx, found, params["type"], params["value"], "")


def _tax_ids_of(store: Store, customer_id: str) -> list[Obj]:
    return store.select("tax_id", lambda t: t["customer"] == customer_id)


def customer_tax_id_list(ctx: Context, params: dict[str, Any], customer: str) -> Obj:
    ctx.fetch("customer", customer, param="customer")
    return paginate(_tax_ids_of(ctx.store, customer), params, f"/v1/customers/{customer}/tax_ids")


def _tax_id_of(ctx: Context, customer: str, tax_id: str) -> Obj:
    ctx.fetch("customer", customer, param="customer")
    found = ctx.fetch("tax_id", tax_id, label="tax id")
    if found["customer"] != customer:
        raise resource_missing("tax id", tax_id)
    return found


def customer_tax_id_retrieve(
    ctx: Context, params: dict[str, Any], customer: str, tax_id: str
) -> Obj:
    return _tax_id_of(ctx, customer, tax_id)


def customer_tax_id_delete(ctx: Context, params: dict[str, Any], customer: str, tax_id: str) -> Obj:
    found = _tax_id_of(ctx, customer, tax_id)
    ctx.emit("customer.tax_id.deleted", found)
    tombstone = deleted(found)
    ctx.store.replace(tombstone)
    return tombstone


def tax_id_retrieve(ctx: Context, params: dict[str, Any], tax_id: str) -> Obj:
    """``/v1/tax_ids/{id}``: a tax id by its own id, whoever owns it (dj-stripe fetches
    a customer's tax ids this way)."""
    return ctx.fetch("tax_id", tax_id, label="tax id")


def tax_id_delete(ctx: Context, params: dict[str, Any], tax_id: str) -> Obj:
    found = ctx.fetch("tax_id", tax_id, label="tax id")
    ctx.emit("customer.tax_id.deleted", found)
    tombstone = deleted(found)
    ctx.store.replace(tombstone)
    return tombstone


def tax_id_list(ctx: Context, params: dict[str, Any]) -> Obj:
    """``/v1/tax_ids``: a customer's ids by ``owner``; the account itself has none."""
    owner = params.get("owner") or {"type": "self"}
    found = []
    if owner["type"] == "customer" and owner.get("customer"):
        found = _tax_ids_of(ctx.store, owner["customer"])
    return paginate(found, params, "/v1/tax_ids")


@includable("customer", "tax_ids")
def _customer_tax_ids(store: Store, customer: Obj) -> Obj:
    return list_object(
        f"/v1/customers/{customer['id']}/tax_ids", _tax_ids_of(store, customer["id"])
    )


@includable("customer", "sources")
def _customer_sources(store: Store, customer: Obj) -> Obj:
    """Legacy sources are not emulated: cards are payment methods."""
    return list_object(f"/v1/customers/{customer['id']}/sources", [])


@includable("customer", "subscriptions")
def _customer_subscriptions(store: Store, customer: Obj) -> Obj:
    subscriptions = store.select(
        "subscription", lambda s: s["customer"] == customer["id"] and s["status"] != "canceled"
    )
    return list_object(f"/v1/customers/{customer['id']}/subscriptions", subscriptions)


ROUTES = [
    route("POST", "/v1/customers", customer_create, P.CustomerCreateParams),
    route("GET", "/v1/customers", customer_list, P.CustomerListParams),
    route("GET", "/v1/customers/search", customer_search, P.CustomerSearchParams),
    route("GET", "/v1/customers/{customer}", customer_retrieve, P.CustomerRetrieveParams),
    route("POST", "/v1/customers/{customer}", customer_update, P.CustomerModifyParams),
    route("DELETE", "/v1/customers/{customer}", customer_delete, P.CustomerDeleteParams),
    route("GET", "/v1/tax_ids", tax_id_list, P.TaxIdListParams),
    route("GET", "/v1/tax_ids/{tax_id}", tax_id_retrieve, P.TaxIdRetrieveParams),
    route("DELETE", "/v1/tax_ids/{tax_id}", tax_id_delete, P.TaxIdDeleteParams),
    route(
        "POST",
        "/v1/customers/{customer}/tax_ids",
        customer_tax_id_create,
        P.CustomerCreateTaxIdParams,
    ),
    route(
        "GET", "/v1/customers/{customer}/tax_ids", customer_tax_id_list, P.CustomerListTaxIdsParams
    ),
    route(
        "GET",
        "/v1/customers/{customer}/tax_ids/{tax_id}",
        customer_tax_id_retrieve,
        P.CustomerRetrieveTaxIdParams,
    ),
    route(
        "DELETE",
        "/v1/customers/{customer}/tax_ids/{tax_id}",
        customer_tax_id_delete,
        P.CustomerDeleteTaxIdParams,
    ),
]
