"""Invoice endpoints: create a draft, update, delete, list, finalize, pay (402 on a
decline), void, lines and invoice payments."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.errors import invalid_request
from stripe_emulator.render import includable, list_object, paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj, Store

from .common import assign, created_filter, deleted
from .invoicing import (
    AUTO_FINALIZE_DELAY,
    invoice_build,
    invoice_collect,
    invoice_finalize,
    invoice_mark_paid,
    invoice_mark_uncollectible,
    invoice_open,
    invoice_pull_pending,
    invoice_void_now,
)
from .subscription_lifecycle import invoice_collect_automatically


def invoice_create(ctx: Context, params: dict[str, Any]) -> Obj:
    customer = ctx.fetch("customer", params.get("customer"), param="customer")
    subscription = None
    if params.get("subscription"):
        subscription = ctx.fetch("subscription", params["subscription"], param="subscription")
    currency = (
        params.get("currency")
        or (subscription or {}).get("currency")
        or customer["currency"]
        or "usd"
    )
    invoice = invoice_build(
        ctx, customer, billing_reason="manual", currency=currency, subscription=subscription
    )
    invoice["auto_advance"] = params.get("auto_advance", False)
    invoice["collection_method"] = params.get("collection_method", "charge_automatically")
    if invoice["collection_method"] == "send_invoice":
        invoice["due_date"] = params.get("due_date") or invoice["created"] + 86400 * params.get(
            "days_until_due", 30
        )
    assign(invoice, params, ("description", "footer", "default_payment_method"))
    if invoice["auto_advance"]:  # Stripe finalizes it on its own, an hour from now by default
        invoice["automatically_finalizes_at"] = invoice["created"] + AUTO_FINALIZE_DELAY
        if params.get("automatically_finalizes_at"):
            if params["automatically_finalizes_at"] <= invoice["created"]:
                raise invalid_request(
                    "automatically_finalizes_at must be in the future.",
                    param="automatically_finalizes_at",
                )
            # A time of one's own is kept whatever the webhooks do (Stripe says so).
            invoice["automatically_finalizes_at"] = params["automatically_finalizes_at"]
            invoice["_finalization_fixed"] = True
    elif params.get("automatically_finalizes_at"):
        raise invalid_request(
            "automatically_finalizes_at needs auto_advance=true.",
            param="automatically_finalizes_at",
        )
    if params.get("pending_invoice_items_behavior") == "include":
        invoice_pull_pending(ctx, invoice, subscription["id"] if subscription else None)
    invoice_open(ctx, invoice)
    return invoice


def invoice_retrieve(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    return ctx.fetch("invoice", invoice)


def invoice_update(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    found = ctx.fetch("invoice", invoice)
    if found["status"] != "draft" and set(params) - {
        "metadata",
        "description",
        "footer",
        "expand",
        "auto_advance",
    }:
        raise invalid_request("Finalized invoices can't be updated in this way.", param="invoice")
    before = ctx.snapshot(found)
    assign(
        found,
        params,
        ("auto_advance", "description", "footer", "default_payment_method", "collection_method"),
    )
    if found["status"] == "draft":
        _schedule_finalization(ctx, found, params)
    ctx.store.touch(found)
    ctx.emit("invoice.updated", found, before)
    return found


def _schedule_finalization(ctx: Context, draft: Obj, params: dict[str, Any]) -> None:
    """``auto_advance=false`` holds a draft until it is finalized explicitly; turning it back
    on schedules the finalization (``automatically_finalizes_at``, or an hour from now)."""
    if not draft["auto_advance"]:
        if params.get("automatically_finalizes_at"):
            raise invalid_request(
                "automatically_finalizes_at needs auto_advance=true.",
                param="automatically_finalizes_at",
            )
        draft["automatically_finalizes_at"] = None
        draft.pop("_awaiting_acknowledgement", None)
        return
    now = ctx.now(draft["test_clock"])
    if params.get("automatically_finalizes_at"):
        if params["automatically_finalizes_at"] <= now:
            raise invalid_request(
                "automatically_finalizes_at must be in the future.",
                param="automatically_finalizes_at",
            )
        draft["automatically_finalizes_at"] = params["automatically_finalizes_at"]
        draft.pop("_awaiting_acknowledgement", None)
    elif draft["automatically_finalizes_at"] is None:
        draft["automatically_finalizes_at"] = now + AUTO_FINALIZE_DELAY


def invoice_delete(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    found = ctx.fetch("invoice", invoice)
    if found["status"] != "draft":
        raise invalid_request("You can only delete draft invoices.", param="invoice")
    for item in ctx.store.select("invoiceitem", lambda i: i["invoice"] == invoice):
        item["invoice"] = None
        ctx.store.touch(item)
    ctx.emit("invoice.deleted", found)
    tombstone = deleted(found)
    ctx.store.replace(tombstone)
    return tombstone


def invoice_list(ctx: Context, params: dict[str, Any]) -> Obj:
    def matches(invoice: Obj) -> bool:
        subscription = ((invoice["parent"] or {}).get("subscription_details") or {}).get(
            "subscription"
        )
        return (
            params.get("customer", invoice["customer"]) == invoice["customer"]
            and params.get("status", invoice["status"]) == invoice["status"]
            and params.get("collection_method", invoice["collection_method"])
            == invoice["collection_method"]
            and params.get("subscription", subscription) == subscription
            and created_filter(invoice, params.get("created"))
        )

    return paginate(ctx.store.select("invoice", matches), params, "/v1/invoices")


def invoice_finalize_endpoint(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    found = ctx.fetch("invoice", invoice)
    if found["status"] != "draft":
        raise invalid_request(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice."
        )
    if "auto_advance" in params:
        found["auto_advance"] = params["auto_advance"]
    found.pop("_awaiting_acknowledgement", None)
    invoice_finalize(ctx, found)
    # With automatic advancement Stripe goes on to collect; without, it waits for ``pay``.
    if (
        found["auto_advance"]
        and found["status"] == "open"
        and found["collection_method"] == "charge_automatically"
    ):
        invoice_collect_automatically(ctx, found)  # a decline is recorded, not answered 402
    return found


def invoice_pay(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    found = ctx.fetch("invoice", invoice)
    if found["status"] == "draft":
        invoice_finalize(ctx, found)
    # Stripe's answers (it sends no error code with either); an uncollectible invoice can
    # still be paid.
    if found["status"] == "paid":
        raise invalid_request("Invoice is already paid")
    if found["status"] == "void":
        raise invalid_request("Voided invoices cannot be paid.")
    if params.get("paid_out_of_band"):
        invoice_mark_paid(ctx, found, intent=None)
        return found
    failure = invoice_collect(ctx, found, params.get("payment_method"))
    if failure is not None:
        raise failure.error()
    return found


def invoice_void(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    found = ctx.fetch("invoice", invoice)
    if found["status"] not in ("open", "uncollectible"):
        raise invalid_request(
            f"You can only void open or uncollectible invoices (this one is {found['status']})."
        )
    invoice_void_now(ctx, found)
    return found


def invoice_mark_uncollectible_endpoint(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    found = ctx.fetch("invoice", invoice)
    if found["status"] != "open":
        raise invalid_request(
            f"You can only mark open invoices as uncollectible (this one is {found['status']}).",
            param="invoice",
        )
    invoice_mark_uncollectible(ctx, found)
    return found


def invoice_lines(ctx: Context, params: dict[str, Any], invoice: str) -> Obj:
    found = ctx.fetch("invoice", invoice)
    return paginate(list(found["lines"]["data"]), params, f"/v1/invoices/{invoice}/lines")


@includable("invoice", "payments")
def _invoice_payments(store: Store, invoice: Obj) -> Obj:
    payments = store.select("invoice_payment", lambda p: p["invoice"] == invoice["id"])
    return list_object(f"/v1/invoice_payments?invoice={invoice['id']}", payments)


def invoice_payment_list(ctx: Context, params: dict[str, Any]) -> Obj:
    payments = ctx.store.select(
        "invoice_payment",
        lambda p: (
            params.get("invoice", p["invoice"]) == p["invoice"]
            and params.get("status", p["status"]) == p["status"]
        ),
    )
    return paginate(payments, params, "/v1/invoice_payments")


def invoice_payment_retrieve(ctx: Context, params: dict[str, Any], invoice_payment: str) -> Obj:
    return ctx.fetch("invoice_payment", invoice_payment, label="invoice payment")


ROUTES = [
    route("POST", "/v1/invoices", invoice_create, P.InvoiceCreateParams),
    route("GET", "/v1/invoices", invoice_list, P.InvoiceListParams),
    route("GET", "/v1/invoices/{invoice}", invoice_retrieve, P.InvoiceRetrieveParams),
    route("POST", "/v1/invoices/{invoice}", invoice_update, P.InvoiceModifyParams),
    route("DELETE", "/v1/invoices/{invoice}", invoice_delete, P.InvoiceDeleteParams),
    route(
        "POST",
        "/v1/invoices/{invoice}/finalize",
        invoice_finalize_endpoint,
        P.InvoiceFinalizeInvoiceParams,
    ),
    route("POST", "/v1/invoices/{invoice}/pay", invoice_pay, P.InvoicePayParams),
    route("POST", "/v1/invoices/{invoice}/void", invoice_void, P.InvoiceVoidInvoiceParams),
    route(
        "POST",
        "/v1/invoices/{invoice}/mark_uncollectible",
        invoice_mark_uncollectible_endpoint,
        P.InvoiceMarkUncollectibleParams,
    ),
    route("GET", "/v1/invoices/{invoice}/lines", invoice_lines, P.InvoiceListLinesParams),
    route("GET", "/v1/invoice_payments", invoice_payment_list, P.InvoicePaymentListParams),
    route(
        "GET",
        "/v1/invoice_payments/{invoice_payment}",
        invoice_payment_retrieve,
        P.InvoicePaymentRetrieveParams,
    ),
]
