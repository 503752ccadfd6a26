"""A draft's lines in bulk: ``POST /v1/invoices/{id}/add_lines``, ``update_lines`` and
``remove_lines``. Each line is an invoice item on the draft, created, edited or taken off
through the invoice item handlers, so both ways of editing a draft behave the same. A bad
line refuses the whole request (the dispatcher undoes the lines already changed)."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.errors import StripeError, invalid_request
from stripe_emulator.routing import route
from stripe_emulator.store import Obj

from .common import assign, deleted
from .invoice_items import invoice_item_create, invoice_item_update
from .invoicing import (
    invoice_add_line,
    invoice_check_room,
    invoice_item_line,
    invoice_remove_item_line,
)

# Line parameters stripe-python declares that would change amounts in ways the emulator
# does not compute (taxes, discounts, decimal quantities): refused rather than ignored.
_NOT_EMULATED = ("discounts", "tax_amounts", "tax_rates", "quantity_decimal")


def _draft(ctx: Context, invoice_id: str) -> Obj:
    invoice = ctx.fetch("invoice", invoice_id)
    if invoice["status"] != "draft":
        raise invalid_request(
            f"You can only modify the lines of a draft invoice; this one is {invoice['status']}.",
            param="invoice",
        )
    return invoice


def _refuse_not_emulated(spec: dict[str, Any], where: str) -> None:
    for key in _NOT_EMULATED:
        if spec.get(key) not in (None, "", []):
            raise invalid_request(
                f"{where}[{key}] is not emulated (no taxes, discounts or decimal quantities).",
                param=f"{where}[{key}]",
            )


def _named(error: StripeError, where: str) -> StripeError:
    """An invoice item handler's error, naming the parameter inside ``lines[i]``."""
    if error.param and not error.param.startswith("lines["):
        inner = error.param
        error.param = f"{where}[{inner}]"
        error.message = error.message.replace(f"param: {inner}", f"param: {error.param}")
        error.args = (error.message,)
    return error


def _line_item(ctx: Context, invoice: Obj, line_id: str, where: str) -> tuple[Obj, Obj | None]:
    """The line of this invoice with that id, and the invoice item behind it (if any)."""
    line = next((ln for ln in invoice["lines"]["data"] if ln["id"] == line_id), None)
    if line is None:
        raise invalid_request(
            f"Invalid {where}[id]: no line item '{line_id}' on invoice {invoice['id']}.",
            param=f"{where}[id]",
        )
    details = (line["parent"] or {}).get("invoice_item_details") or {}
    item = ctx.store.get(details["invoice_item"]) if details.get("invoice_item") else None
    return line, item


def _invoice_metadata(ctx: Context, invoice: Obj, params: dict[str, Any]) -> None:
    if "invoice_metadata" in params:
        assign(invoice, {"metadata": params["invoice_metadata"]}, ())


def _announce(ctx: Context, invoice: Obj, before: Obj) -> Obj:
    ctx.store.touch(invoice)
    ctx.emit("invoice.updated", invoice, before)
    return invoice


def invoice_add_lines(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    found = _draft(ctx, invoice)
    before = ctx.snapshot(found)
    lines = params["lines"]
    invoice_check_room(found, len(lines), "lines")
    for index, spec in enumerate(lines):
        where = f"lines[{index}]"
        _refuse_not_emulated(spec, where)
        if spec.get("invoice_item"):
            _assign_item(ctx, found, spec, where)
            continue
        fields = {k: v for k, v in spec.items() if k not in _NOT_EMULATED}
        currency = (fields.get("price_data") or {}).get("currency") or found["currency"]
        price_id = (fields.get("pricing") or {}).get("price")
        if price_id:
            currency = ctx.fetch("price", price_id, param=f"{where}[pricing][price]")["currency"]
        if "amount" in fields:
            fields.setdefault("currency", found["currency"])
            currency = fields["currency"]
        if currency != found["currency"]:
            raise invalid_request(
                f"The currency of {where} ({currency}) must be the invoice's "
                f"({found['currency']}).",
                param=f"{where}[currency]",
            )
        try:
            invoice_item_create(ctx, {**fields, "customer": found["customer"], "invoice": invoice})
        except StripeError as error:
            raise _named(error, where) from None
    _invoice_metadata(ctx, found, params)
    return _announce(ctx, found, before)


def _assign_item(ctx: Context, invoice: Obj, spec: dict[str, Any], where: str) -> None:
    """An existing pending invoice item of the invoice's customer joins the draft."""
    item = ctx.fetch(
        "invoiceitem", spec["invoice_item"], label="invoiceitem", param=f"{where}[invoice_item]"
    )
    if item["customer"] != invoice["customer"]:
        raise invalid_request(
            f"Invoice item {item['id']} belongs to another customer than invoice {invoice['id']}.",
            param=f"{where}[invoice_item]",
        )
    if item["invoice"] is not None:
        raise invalid_request(
            f"Invoice item {item['id']} is already on invoice {item['invoice']}; only an "
            "unassigned invoice item can be added.",
            param=f"{where}[invoice_item]",
        )
    if item["currency"] != invoice["currency"]:
        raise invalid_request(
            f"The currency of invoice item {item['id']} ({item['currency']}) must be the "
            f"invoice's ({invoice['currency']}).",
            param=f"{where}[invoice_item]",
        )
    extra = {k: v for k, v in spec.items() if k != "invoice_item"}
    if extra:
        try:
            invoice_item_update(ctx, extra, item["id"])
        except StripeError as error:
            raise _named(error, where) from None
    item["invoice"] = invoice["id"]
    ctx.store.touch(item)
    invoice_add_line(invoice, invoice_item_line(invoice, item, ctx.store))


def invoice_update_lines(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    found = _draft(ctx, invoice)
    before = ctx.snapshot(found)
    for index, spec in enumerate(params["lines"]):
        where = f"lines[{index}]"
        _refuse_not_emulated(spec, where)
        line, item = _line_item(ctx, found, spec["id"], where)
        changes = {k: v for k, v in spec.items() if k != "id"}
        if item is None:  # a subscription item's line: only its wording and metadata
            other = set(changes) - {"description", "metadata"}
            if other:
                name = sorted(other)[0]
                raise invalid_request(
                    f"{where}[{name}] cannot be changed on a subscription item's line; change "
                    "the subscription instead.",
                    param=f"{where}[{name}]",
                )
            if "description" in changes:
                line["description"] = changes["description"]
            if "metadata" in changes:  # Stripe sets a subscription line's metadata as sent
                line["metadata"] = {k: v for k, v in (changes["metadata"] or {}).items() if v != ""}
            continue
        if "pricing" in changes or "price_data" in changes:
            raise invalid_request(
                f"{where}: changing a line's price is not emulated; remove the line and add "
                "a new one.",
                param=f"{where}[pricing]" if "pricing" in changes else f"{where}[price_data]",
            )
        try:
            invoice_item_update(ctx, changes, item["id"])
        except StripeError as error:
            raise _named(error, where) from None
    _invoice_metadata(ctx, found, params)
    ctx.store.touch(found)
    return _announce(ctx, found, before)


def invoice_remove_lines(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    found = _draft(ctx, invoice)
    before = ctx.snapshot(found)
    for index, spec in enumerate(params["lines"]):
        where = f"lines[{index}]"
        _, item = _line_item(ctx, found, spec["id"], where)
        if item is None:
            raise invalid_request(
                f"{where}[id] is a subscription item's line; only invoice items' lines can be "
                "removed.",
                param=f"{where}[id]",
            )
        invoice_remove_item_line(found, item["id"])
        if spec["behavior"] == "unassign":  # pending again, for the next invoice
            item["invoice"] = None
            ctx.store.touch(item)
        else:
            ctx.emit("invoiceitem.deleted", item)
            ctx.store.replace(deleted(item))
    _invoice_metadata(ctx, found, params)
    return _announce(ctx, found, before)


ROUTES = [
    route("POST", "/v1/invoices/{invoice}/add_lines", invoice_add_lines, P.InvoiceAddLinesParams),
    route(
        "POST",
        "/v1/invoices/{invoice}/update_lines",
        invoice_update_lines,
        P.InvoiceUpdateLinesParams,
    ),
    route(
        "POST",
        "/v1/invoices/{invoice}/remove_lines",
        invoice_remove_lines,
        P.InvoiceRemoveLinesParams,
    ),
]
