"""Invoice items: pending charges (usage, prorations) that the next invoice pulls in."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.currencies import currency_check
from stripe_emulator.errors import invalid_request, negative, only_one_of
from stripe_emulator.ids import new_id
from stripe_emulator.render import paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj

from .common import assign, created_filter, deleted
from .invoicing import (
    customer_currency_set,
    invoice_add_line,
    invoice_check_room,
    invoice_item_line,
    invoice_remove_item_line,
    invoice_replace_item_line,
)


def invoice_item_add(
    ctx: Context,
    customer: Obj,
    *,
    amount: int,
    currency: str,
    description: str | None,
    price: Obj | None = None,
    quantity: int = 1,
    period: tuple[int, int] | None = None,
    subscription_id: str | None = None,
    proration: bool = False,
    metadata: dict[str, str] | None = None,
) -> Obj:
    now = ctx.now(customer["test_clock"])
    start, end = period or (now, now)
    item: Obj = {
        "id": new_id("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer["id"],
        "date": now,
        "description": description,
        "discountable": not proration,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "period": {"start": start, "end": end},
        "proration": proration,
        "quantity": quantity,
        "tax_rates": [],
        "test_clock": customer["test_clock"],
        "parent": None
        if subscription_id is None
        else {
            "type": "subscription_details",
            "subscription_details": {"subscription": subscription_id},
        },
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price["id"], "product": price["product"]} if price else None,
            "unit_amount_decimal": price["unit_amount_decimal"]
            if price
            else str(amount // max(quantity, 1)),
        },
        "net_amount": amount,
        "customer_account": None,
    }
    customer_currency_set(ctx, customer["id"], currency)
    ctx.store.add(item)
    ctx.emit("invoiceitem.created", item)
    return item


def invoice_item_create(ctx: Context, params: dict[str, Any]) -> Obj:
    customer = ctx.fetch("customer", params.get("customer"), param="customer")
    only_one_of(params, "amount", "pricing", "price_data", "unit_amount_decimal")
    quantity = params.get("quantity", 1)
    negative(quantity, "quantity")
    price = None
    price_id = (params.get("pricing") or {}).get("price")
    if price_id:
        price = ctx.fetch("price", price_id, param="pricing[price]")
        if price["type"] == "recurring":
            raise invalid_request(
                "The price specified is set to `type=recurring` but this field only accepts "
                "prices with `type=one_time`.",
                param="pricing[price]",
            )
        amount, currency = price["unit_amount"] * quantity, price["currency"]
    elif "price_data" in params:
        data = params["price_data"]
        amount, currency = data.get("unit_amount", 0) * quantity, data["currency"]
    elif "amount" in params:
        amount, currency = params["amount"], params.get("currency") or customer["currency"] or "usd"
        if "currency" not in params and customer["currency"] is None:
            raise invalid_request("Missing required param: currency.", param="currency")
    elif "unit_amount_decimal" in params:
        amount = int(float(params["unit_amount_decimal"]) * quantity)
        currency = params.get("currency") or "usd"
    else:
        raise invalid_request("Missing required param: amount.", param="amount")
    currency = currency_check(currency, "currency")
    subscription_id = params.get("subscription")
    if subscription_id:
        subscription = ctx.fetch("subscription", subscription_id, param="subscription")
        _same_customer(subscription, customer, "subscription")
    period = params.get("period")
    invoice = None
    if params.get("invoice"):
        invoice = ctx.fetch("invoice", params["invoice"], param="invoice")
        _same_customer(invoice, customer, "invoice")
        if invoice["status"] != "draft":
            raise invalid_request(
                "You can only add invoice items to draft invoices.", param="invoice"
            )
        if currency != invoice["currency"]:
            raise invalid_request(
                f"The currency of this invoice item ({currency}) must match the currency of "
                f"the invoice ({invoice['currency']}).",
                param="currency",
            )
        invoice_check_room(invoice, 1, "invoice")
    item = invoice_item_add(
        ctx,
        customer,
        amount=amount,
        currency=currency,
        description=params.get("description"),
        price=price,
        quantity=quantity,
        period=(period["start"], period["end"]) if period else None,
        subscription_id=subscription_id,
        metadata=params.get("metadata") or {},
    )
    if "discountable" in params:  # Stripe: "Defaults to true if no value is provided."
        item["discountable"] = params["discountable"]
    if invoice is not None:
        item["invoice"] = invoice["id"]
        invoice_add_line(invoice, invoice_item_line(invoice, item, ctx.store))
        ctx.store.touch(invoice)
    return item


def _same_customer(owner: Obj, customer: Obj, param: str) -> None:
    """An invoice item joins only an invoice or subscription of its own customer."""
    if owner["customer"] != customer["id"]:
        raise invalid_request(
            f"The {param} {owner['id']} belongs to customer {owner['customer']}, not to "
            f"{customer['id']}.",
            param=param,
        )


def _editable(ctx: Context, item_id: str) -> tuple[Obj, Obj | None]:
    item = ctx.fetch("invoiceitem", item_id, label="invoiceitem")
    invoice = ctx.store.get(item["invoice"]) if item["invoice"] else None
    if invoice is not None and invoice["status"] != "draft":
        raise invalid_request(
            "Updating or deleting an invoice item is only possible while it is pending or on "
            "a draft invoice.",
            param="invoiceitem",
        )
    return item, invoice


def invoice_item_retrieve(ctx: Context, params: dict[str, Any], invoiceitem: str) -> Obj:
    return ctx.fetch("invoiceitem", invoiceitem, label="invoiceitem")


def invoice_item_update(ctx: Context, params: dict[str, Any], invoiceitem: str) -> Obj:
    item, invoice = _editable(ctx, invoiceitem)
    assign(item, params, ("description", "discountable"))
    if "quantity" in params or "amount" in params:
        quantity = params.get("quantity", item["quantity"])
        price_id = (item["pricing"]["price_details"] or {}).get("price")
        price = ctx.store.get(price_id) if price_id else None
        item["quantity"] = quantity
        item["amount"] = params.get(
            "amount", price["unit_amount"] * quantity if price else item["amount"]
        )
        item["net_amount"] = item["amount"]
    if "period" in params:
        item["period"] = {"start": params["period"]["start"], "end": params["period"]["end"]}
    ctx.store.touch(item)
    if invoice is not None:
        invoice_replace_item_line(invoice, item, ctx.store)
        ctx.store.touch(invoice)
    return item


def invoice_item_delete(ctx: Context, params: dict[str, Any], invoiceitem: str) -> Obj:
    item, invoice = _editable(ctx, invoiceitem)
    if invoice is not None:
        invoice_remove_item_line(invoice, item["id"])
        ctx.store.touch(invoice)
    ctx.emit("invoiceitem.deleted", item)
    tombstone = deleted(item)
    ctx.store.replace(tombstone)
    return tombstone


def invoice_item_list(ctx: Context, params: dict[str, Any]) -> Obj:
    def matches(item: Obj) -> bool:
        return (
            params.get("customer", item["customer"]) == item["customer"]
            and params.get("invoice", item["invoice"]) == item["invoice"]
            and ("pending" not in params or (item["invoice"] is None) == params["pending"])
            and created_filter({"created": item["date"]}, params.get("created"))
        )

    return paginate(ctx.store.select("invoiceitem", matches), params, "/v1/invoiceitems")


ROUTES = [
    route("POST", "/v1/invoiceitems", invoice_item_create, P.InvoiceItemCreateParams),
    route("GET", "/v1/invoiceitems", invoice_item_list, P.InvoiceItemListParams),
    route(
        "GET", "/v1/invoiceitems/{invoiceitem}", invoice_item_retrieve, P.InvoiceItemRetrieveParams
    ),
    route("POST", "/v1/invoiceitems/{invoiceitem}", invoice_item_update, P.InvoiceItemModifyParams),
    route(
        "DELETE", "/v1/invoiceitems/{invoiceitem}", invoice_item_delete, P.InvoiceItemDeleteParams
    ),
]
