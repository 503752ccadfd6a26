"""The invoice lifecycle: build a draft and its lines, pull in pending items, finalize,
collect payment (declines included) and mark paid. Subscriptions, test clocks and the
invoice endpoints all drive invoices through these functions."""

from __future__ import annotations

from dataclasses import dataclass

from stripe_emulator.context import Context
from stripe_emulator.errors import StripeError, card_declined, invalid_request
from stripe_emulator.ids import new_id, random_token
from stripe_emulator.render import list_object
from stripe_emulator.store import Obj, Store

from .coupons import discount_amounts, subscription_discount_terms, subscription_once_discounts_use
from .payment_methods import (
    payment_method_attach,
    payment_method_check_usable,
    payment_method_resolve,
)
from .payments import charge_attempt, payment_intent_authenticated, payment_intent_cancel

# Stripe finalizes a subscription's draft about an hour after our endpoints acknowledge its
# ``invoice.created`` (answer 2xx), and at most 72 hours after it was created when they do not.
AUTO_FINALIZE_DELAY = 3600
UNACKNOWLEDGED_FINALIZE_DELAY = 72 * 3600
# "You can only add invoice items to draft invoices and there is a maximum of 250 items per
# invoice" (the invoice item's ``invoice`` parameter).
MAX_INVOICE_ITEMS = 250


def invoice_build(
    ctx: Context,
    customer: Obj,
    *,
    billing_reason: str,
    currency: str,
    subscription: Obj | None = None,
    period: tuple[int, int] | None = None,
    invoice_id: str | None = None,
) -> Obj:
    """A draft invoice, not yet stored (previews use it as is)."""
    now = ctx.now(customer["test_clock"])
    invoice_id = invoice_id or new_id("in")
    start, end = period or (now, now)
    # A subscription's invoice carries the discounts in force when it is made.
    terms = subscription_discount_terms(ctx.store, subscription, now) if subscription else []
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Local Stripe emulator",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": subscription is not None,
        "automatic_tax": {
            "enabled": False,
            "liability": None,
            "status": None,
            "disabled_reason": None,
            "provider": None,
        },
        "billing_reason": billing_reason,
        "collection_method": subscription["collection_method"]
        if subscription
        else "charge_automatically",
        "created": now,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_address": customer["address"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": customer["shipping"],
        "customer_tax_exempt": customer["tax_exempt"],
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [term["discount"] for term in terms],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": list_object(f"/v1/invoices/{invoice_id}/lines", []),
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": end,
        "period_start": start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": customer["test_clock"],
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "webhooks_delivered_at": None,
        "automatically_finalizes_at": None,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "amount_overpaid": 0,
        "parent": None
        if subscription is None
        else {
            "type": "subscription_details",
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
            "quote_details": None,
        },
        "customer_account": None,
        "_discount_terms": terms,
    }


def invoice_line(
    invoice: Obj,
    *,
    amount: int,
    description: str,
    price: Obj | None,
    quantity: int | None,
    period: tuple[int, int],
    subscription_id: str | None = None,
    subscription_item_id: str | None = None,
    invoice_item_id: str | None = None,
    proration: bool = False,
    metadata: dict[str, str] | None = None,
    discountable: bool = True,
) -> Obj:
    """One ``line_item``; its ``parent`` names the subscription item or invoice item behind it.
    A proration is never discountable (Stripe: "Always false for prorations")."""
    details = {
        "invoice_item": invoice_item_id,
        "proration": proration,
        "proration_details": {"credited_items": None},
        "subscription": subscription_id,
    }
    if invoice_item_id is not None:
        parent = {
            "type": "invoice_item_details",
            "invoice_item_details": details,
            "subscription_item_details": None,
        }
    else:
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {**details, "subscription_item": subscription_item_id},
        }
    return {
        "id": f"il_{random_token(24)}",
        "object": "line_item",
        "amount": amount,
        "currency": invoice["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": discountable and not proration,
        "discounts": [],
        "invoice": invoice["id"],
        "livemode": False,
        "metadata": dict(metadata or {}),
        "parent": parent,
        "period": {"start": period[0], "end": period[1]},
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price["id"], "product": price["product"]} if price else None,
            "unit_amount_decimal": price["unit_amount_decimal"] if price else str(amount),
        },
        "quantity": quantity,
        "subtotal": amount,
        "taxes": [],
        "pretax_credit_amounts": [],
    }


def invoice_add_line(invoice: Obj, line: Obj) -> None:
    invoice["lines"]["data"].append(line)
    _recompute(invoice)


def invoice_item_lines(invoice: Obj) -> list[Obj]:
    return [line for line in invoice["lines"]["data"] if _line_item_id(line) is not None]


def _line_item_id(line: Obj) -> str | None:
    return ((line["parent"] or {}).get("invoice_item_details") or {}).get("invoice_item")


def invoice_check_room(invoice: Obj, adding: int, param: str) -> None:
    """Stripe refuses an invoice item beyond the 250th on one invoice."""
    if len(invoice_item_lines(invoice)) + adding > MAX_INVOICE_ITEMS:
        raise invalid_request(
            f"An invoice can have at most {MAX_INVOICE_ITEMS} invoice items; invoice "
            f"{invoice['id']} has {len(invoice_item_lines(invoice))}.",
            param=param,
        )


def invoice_replace_item_line(invoice: Obj, item: Obj, store: Store) -> None:
    """The line of an edited invoice item, rebuilt in place: its id and position stay."""
    for index, line in enumerate(invoice["lines"]["data"]):
        if _line_item_id(line) == item["id"]:
            fresh = invoice_item_line(invoice, item, store)
            fresh["id"] = line["id"]
            invoice["lines"]["data"][index] = fresh
    _recompute(invoice)


def invoice_remove_item_line(invoice: Obj, invoice_item_id: str) -> None:
    """Drop the line an invoice item produced (the item was edited or deleted)."""
    invoice["lines"]["data"] = [
        line
        for line in invoice["lines"]["data"]
        if ((line["parent"] or {}).get("invoice_item_details") or {}).get("invoice_item")
        != invoice_item_id
    ]
    _recompute(invoice)


def _recompute(invoice: Obj) -> None:
    """Totals from the lines: the subtotal less the discounts (no taxes here)."""
    lines = invoice["lines"]["data"]
    subtotal = sum(item["amount"] for item in lines)
    discounts = discount_amounts(lines, invoice.get("_discount_terms") or [])
    total = subtotal - sum(discount["amount"] for discount in discounts)
    invoice.update(
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal,
        total=total,
        total_excluding_tax=total,
        total_discount_amounts=discounts,
        amount_due=max(total, 0),
        amount_remaining=max(total, 0) - invoice["amount_paid"],
    )


def invoice_item_line(invoice: Obj, item: Obj, store: Store) -> Obj:
    details = item["pricing"]["price_details"] or {}
    price = store.get(details.get("price") or "")
    subscription = (item["parent"] or {}).get("subscription_details") or {}
    return invoice_line(
        invoice,
        amount=item["amount"],
        description=item["description"] or "",
        price=price,
        quantity=item["quantity"],
        period=(item["period"]["start"], item["period"]["end"]),
        subscription_id=subscription.get("subscription"),
        invoice_item_id=item["id"],
        proration=item["proration"],
        metadata=item["metadata"],
        discountable=item["discountable"],
    )


def pending_invoice_items(store: Store, customer_id: str, subscription_id: str | None) -> list[Obj]:
    """Pending items of a customer; a subscription's invoice takes its own and the unscoped ones."""

    def matches(item: Obj) -> bool:
        owner = ((item["parent"] or {}).get("subscription_details") or {}).get("subscription")
        return (
            item["customer"] == customer_id
            and item["invoice"] is None
            and owner in (None, subscription_id)
        )

    return list(reversed(store.select("invoiceitem", matches)))


def invoice_pull_pending(ctx: Context, invoice: Obj, subscription_id: str | None) -> None:
    """The oldest pending items, up to the invoice's limit; the rest wait for the next one."""
    room = MAX_INVOICE_ITEMS - len(invoice_item_lines(invoice))
    for item in pending_invoice_items(ctx.store, invoice["customer"], subscription_id)[:room]:
        item["invoice"] = invoice["id"]
        ctx.store.touch(item)
        invoice_add_line(invoice, invoice_item_line(invoice, item, ctx.store))


def invoice_open(ctx: Context, invoice: Obj) -> Obj:
    """Store a built draft and announce it. A draft due to finalize on its own (a renewal's)
    waits for every endpoint listening to ``invoice.created`` to acknowledge it."""
    customer_currency_set(ctx, invoice["customer"], invoice["currency"])
    listening = ctx.emulator.webhooks.endpoint_ids("invoice.created")
    waits = invoice["automatically_finalizes_at"] is not None and not invoice.get(
        "_finalization_fixed"
    )
    if waits and listening:
        invoice["automatically_finalizes_at"] = invoice["created"] + UNACKNOWLEDGED_FINALIZE_DELAY
        invoice["webhooks_delivered_at"] = None
    else:
        invoice["webhooks_delivered_at"] = invoice["created"]
    ctx.store.add(invoice)
    subscription_once_discounts_use(ctx, invoice)
    event = ctx.emit("invoice.created", invoice)
    if invoice["webhooks_delivered_at"] is None and event is not None:
        invoice["_awaiting_acknowledgement"] = {"event": event["id"], "endpoints": listening}
    return invoice


def customer_currency_set(ctx: Context, customer_id: str, currency: str) -> None:
    """A customer's currency is fixed by the first thing it is invoiced in."""
    customer = ctx.store.get(customer_id)
    if customer is not None and customer.get("currency") is None:
        customer["currency"] = currency
        ctx.store.touch(customer)


def invoice_created_acknowledged(ctx: Context, event_id: str, endpoint_id: str) -> None:
    """An endpoint answered 2xx to an event: when it was the last one a draft's
    ``invoice.created`` waited for, the draft finalizes an hour of clock time later."""
    event = ctx.store.get(event_id)
    if event is None or event.get("type") != "invoice.created":
        return
    invoice = ctx.store.get(event["data"]["object"]["id"])
    waiting = (invoice or {}).get("_awaiting_acknowledgement")
    if invoice is None or not waiting or waiting["event"] != event_id:
        return
    waiting["endpoints"] = [e for e in waiting["endpoints"] if e != endpoint_id]
    if not waiting["endpoints"]:
        del invoice["_awaiting_acknowledgement"]
        now = ctx.now(invoice["test_clock"])
        invoice["webhooks_delivered_at"] = now
        if invoice["status"] == "draft" and invoice["automatically_finalizes_at"] is not None:
            invoice["automatically_finalizes_at"] = now + AUTO_FINALIZE_DELAY
    ctx.store.touch(invoice)


def invoice_finalize(ctx: Context, invoice: Obj) -> None:
    customer = ctx.fetch("customer", invoice["customer"])
    now = ctx.now(invoice["test_clock"])
    invoice["status"] = "open"
    invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    ctx.store.touch(customer)
    invoice["status_transitions"]["finalized_at"] = now
    invoice["effective_at"] = now
    invoice["automatically_finalizes_at"] = None
    invoice["hosted_invoice_url"] = f"{ctx.base_url}/invoice/{invoice['id']}"
    invoice["invoice_pdf"] = f"{ctx.base_url}/invoice/{invoice['id']}/pdf"
    _balance_apply(ctx, invoice, customer)
    if invoice["collection_method"] == "charge_automatically" and invoice["amount_due"] > 0:
        invoice["next_payment_attempt"] = now
    ctx.store.touch(invoice)
    ctx.emit("invoice.finalized", invoice)
    if invoice["amount_due"] == 0:
        invoice_mark_paid(ctx, invoice, intent=None)


def _balance_apply(ctx: Context, invoice: Obj, customer: Obj) -> None:
    """The customer's balance meets the invoice as it is finalized: a credit (negative,
    from a downgrade's prorations, say) lowers what is due, and what an invoice leaves over
    (a negative total) becomes credit for the next one."""
    starting = customer["balance"]
    net = invoice["total"] + starting
    invoice["starting_balance"] = starting
    invoice["ending_balance"] = min(net, 0)
    invoice["amount_due"] = max(net, 0)
    invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
    if invoice["ending_balance"] != starting:
        customer["balance"] = invoice["ending_balance"]
        ctx.store.touch(customer)
        ctx.emit("customer.updated", customer, previous={"balance": starting})


def _payment_method_for(ctx: Context, invoice: Obj, explicit: str | None) -> Obj | None:
    customer = ctx.fetch("customer", invoice["customer"])
    if explicit:
        method = payment_method_resolve(ctx, explicit)
        payment_method_check_usable(method)
        if method["customer"] is None:
            payment_method_attach(ctx, method, customer)
        elif method["customer"] != customer["id"]:
            raise invalid_request(
                f"The PaymentMethod provided ({method['id']}) does not belong to the Customer "
                f"({customer['id']}) of this invoice. Attach it to that Customer first.",
                param="payment_method",
            )
        return method
    subscription = _subscription_of(ctx.store, invoice)
    for method_id in (
        invoice["default_payment_method"],
        subscription["default_payment_method"] if subscription else None,
        customer["invoice_settings"]["default_payment_method"],
    ):
        method = ctx.store.get(method_id) if method_id else None
        if method is not None and not method.get("_detached"):  # a detached card is skipped
            return method
    return None


def invoice_subscription(store: Store, invoice: Obj) -> Obj | None:
    """The subscription an invoice bills, if any."""
    return _subscription_of(store, invoice)


def _subscription_of(store: Store, invoice: Obj) -> Obj | None:
    details = (invoice["parent"] or {}).get("subscription_details") or {}
    return store.get(details.get("subscription") or "")


# Decline codes after which Stripe's retries stop ("hard declines", Smart Retries docs'
# non-retryable list, as we read it; Radar's blocks are reported as fraudulent here).
NON_RETRYABLE_DECLINE_CODES = frozenset(
    {
        "authentication_required",
        "fraudulent",
        "incorrect_number",
        "lost_card",
        "pickup_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "stolen_card",
        "transaction_not_allowed",
    }
)

# Stripe's answer to paying an invoice whose payment needs the customer's authentication.
REQUIRES_ACTION_MESSAGE = (
    "This payment requires additional user action before it can be completed successfully. "
    "Payment can be completed using the PaymentIntent associated with the invoice. For more "
    "information, see: https://docs.stripe.com/billing/subscriptions/overview#requires-action"
)


@dataclass(frozen=True)
class PaymentFailure:
    """Why collecting an invoice failed: a declined card, a card needing authentication
    (``intent`` is the payment intent waiting for it), or no payment method at all."""

    message: str
    decline_code: str | None = None
    intent: Obj | None = None

    def error(self) -> StripeError:
        if self.intent is not None:
            return StripeError(
                402,
                self.message,
                type="card_error",
                code="invoice_payment_intent_requires_action",
                extra={"payment_intent": self.intent},
            )
        if self.decline_code is None:
            return invalid_request(self.message)
        return card_declined(self.decline_code, self.message)


def invoice_pending_intent(store: Store, invoice: Obj) -> Obj | None:
    """The payment intent of an invoice still waiting for the customer's authentication."""
    intent = store.get(invoice.get("_pending_intent") or "")
    return intent if intent is not None and intent["status"] == "requires_action" else None


def invoice_drop_pending(ctx: Context, invoice: Obj, reason: str) -> None:
    """A new attempt, a payment out of band or a void ends the wait for authentication."""
    intent = invoice_pending_intent(ctx.store, invoice)
    invoice.pop("_pending_intent", None)
    if intent is None:
        return
    payment_intent_cancel(ctx, intent, reason)
    for payment in ctx.store.select(
        "invoice_payment",
        lambda p: p["payment"].get("payment_intent") == intent["id"] and p["status"] == "open",
    ):
        payment["status"] = "canceled"
        payment["status_transitions"]["canceled_at"] = ctx.now(invoice["test_clock"])
        ctx.store.touch(payment)


def invoice_authenticate(ctx: Context, invoice: Obj, *, succeeded: bool) -> PaymentFailure | None:
    """The customer completed (or failed) 3-D Secure for the invoice's pending payment, on
    the hosted invoice page; ``None`` when it is paid."""
    intent = invoice_pending_intent(ctx.store, invoice)
    if intent is None or invoice["status"] != "open":
        return PaymentFailure("This invoice has no payment waiting for authentication.")
    invoice.pop("_pending_intent", None)
    payment_intent_authenticated(ctx, intent, succeeded=succeeded)
    if succeeded:
        invoice_mark_paid(ctx, invoice, intent)
        return None
    for payment in ctx.store.select(
        "invoice_payment", lambda p: p["payment"].get("payment_intent") == intent["id"]
    ):
        payment["status"] = "canceled"
        payment["status_transitions"]["canceled_at"] = ctx.now(invoice["test_clock"])
        ctx.store.touch(payment)
    ctx.store.touch(invoice)
    ctx.emit("invoice.payment_failed", invoice)
    return PaymentFailure(intent["last_payment_error"]["message"])


def invoice_collect(
    ctx: Context, invoice: Obj, payment_method: str | None = None, *, automatic: bool = False
) -> PaymentFailure | None:
    """Charge an open invoice; ``None`` when it is paid. ``automatic`` is Stripe's own
    attempt (a renewal's, or a retry of it): a failure then schedules the next retry. As
    Stripe documents for ``attempt_count``, any first attempt counts, and after it only
    automatic ones (not ``pay`` or the hosted page)."""
    method = _payment_method_for(ctx, invoice, payment_method)
    customer = ctx.fetch("customer", invoice["customer"])
    invoice_drop_pending(ctx, invoice, "automatic")  # this attempt replaces the one waiting
    scheduled = invoice["next_payment_attempt"] if invoice.get("_automatic_attempts") else None
    invoice["attempted"] = True
    if automatic or invoice["attempt_count"] == 0:
        invoice["attempt_count"] += 1
    invoice["next_payment_attempt"] = None
    if automatic:
        invoice["_automatic_attempts"] = invoice.get("_automatic_attempts", 0) + 1
    if method is None:
        # Stripe does not retry without a payment method.
        _retry_schedule(ctx, invoice, automatic, scheduled, retryable=False)
        ctx.store.touch(invoice)
        ctx.emit("invoice.payment_failed", invoice)
        _subscription_status(ctx, invoice, "past_due")
        return PaymentFailure(
            "This customer has no attached payment source or default payment method. "
            "Please consider adding a default payment method."
        )
    intent, card = charge_attempt(
        ctx,
        customer=customer,
        payment_method=method,
        amount=invoice["amount_remaining"],
        currency=invoice["currency"],
        description=f"Payment for Invoice {invoice['number']}",
        authentication_url=invoice["hosted_invoice_url"],
    )
    if intent["status"] == "requires_action":
        # Stripe waits for the customer: no automatic retry, the hosted page asks for it.
        invoice["_pending_intent"] = intent["id"]
        _invoice_payment(ctx, invoice, intent, status="open")
        ctx.store.touch(invoice)
        ctx.emit("invoice.payment_action_required", invoice)
        _subscription_status(ctx, invoice, "past_due")
        return PaymentFailure(REQUIRES_ACTION_MESSAGE, intent=ctx.snapshot(intent))
    if intent["status"] != "succeeded":
        code = card.decline_code or "generic_decline"
        retryable = code not in NON_RETRYABLE_DECLINE_CODES
        _retry_schedule(ctx, invoice, automatic, scheduled, retryable=retryable)
        _invoice_payment(ctx, invoice, intent, status="failed")
        ctx.store.touch(invoice)
        ctx.emit("invoice.payment_failed", invoice)
        _subscription_status(ctx, invoice, "past_due")
        return PaymentFailure(card.decline_message, code)
    invoice_mark_paid(ctx, invoice, intent)
    return None


def _retry_schedule(
    ctx: Context, invoice: Obj, automatic: bool, scheduled: int | None, *, retryable: bool
) -> None:
    """After a failed attempt: Stripe's retry schedule (Smart Retries) sets the next
    automatic attempt of a subscription's renewal invoice, ``retry_schedule[n]`` days after
    the n-th retry's predecessor; after the last one the invoice is marked for the account's
    final action (:func:`invoice_retries_exhausted`). A failed manual attempt (``pay``, the
    hosted page) leaves a running schedule as it was."""
    if not automatic:
        invoice["next_payment_attempt"] = scheduled
        return
    subscription = _subscription_of(ctx.store, invoice)
    if subscription is None or invoice["billing_reason"] == "subscription_create":
        return  # a first payment is not retried: the subscription stays incomplete
    if not retryable:
        return  # Stripe does not retry a hard decline
    schedule = ctx.emulator.retry_schedule
    retries_done = invoice["_automatic_attempts"] - 1
    if retries_done < len(schedule):
        now = ctx.now(invoice["test_clock"])
        invoice["next_payment_attempt"] = now + round(schedule[retries_done] * 86400)
    else:
        invoice["_retries_exhausted"] = True


def invoice_retries_exhausted(ctx: Context, invoice: Obj) -> bool:
    """Whether the last automatic attempt was the schedule's last retry (asked once)."""
    return bool(invoice.pop("_retries_exhausted", False))


def invoice_mark_paid(ctx: Context, invoice: Obj, intent: Obj | None) -> None:
    now = ctx.now(invoice["test_clock"])
    invoice["status"] = "paid"
    invoice["amount_paid"] = invoice["amount_due"]
    invoice["amount_remaining"] = 0
    invoice["status_transitions"]["paid_at"] = now
    invoice["next_payment_attempt"] = None
    invoice["auto_advance"] = False
    ctx.store.touch(invoice)
    if intent is None:
        invoice_drop_pending(ctx, invoice, "automatic")  # paid out of band
    else:
        payment = _invoice_payment(ctx, invoice, intent, status="paid")
        ctx.emit("invoice_payment.paid", payment)
    ctx.emit("invoice.paid", invoice)
    ctx.emit("invoice.payment_succeeded", invoice)
    _pending_update_apply(ctx, invoice)
    _subscription_status(ctx, invoice, "active")


def invoice_mark_uncollectible(ctx: Context, invoice: Obj) -> None:
    """An open invoice written off: no more automatic attempts; it can still be paid."""
    before = ctx.snapshot(invoice)
    invoice_drop_pending(ctx, invoice, "automatic")
    invoice["status"] = "uncollectible"
    invoice["status_transitions"]["marked_uncollectible_at"] = ctx.now(invoice["test_clock"])
    invoice["next_payment_attempt"] = None
    invoice["auto_advance"] = False
    ctx.store.touch(invoice)
    ctx.emit("invoice.marked_uncollectible", invoice, before)


def invoice_void_now(ctx: Context, invoice: Obj) -> None:
    """Void an open invoice; a subscription update waiting for it to be paid is dropped."""
    before = ctx.snapshot(invoice)
    invoice_drop_pending(ctx, invoice, "void_invoice")
    invoice["status"] = "void"
    invoice["status_transitions"]["voided_at"] = ctx.now(invoice["test_clock"])
    invoice["next_payment_attempt"] = None
    invoice["auto_advance"] = False
    ctx.store.touch(invoice)
    ctx.emit("invoice.voided", invoice, before)
    subscription = _subscription_of(ctx.store, invoice)
    if subscription is not None and _pending_for(subscription, invoice):
        before = ctx.snapshot(subscription)
        pending_update_clear(ctx, subscription)
        ctx.emit("customer.subscription.updated", subscription, before)


# Pending updates (``payment_behavior=pending_if_incomplete``) ------------------------------
# The subscription keeps its state; what the update would make of it is kept privately in
# ``_pending_apply`` (fields and items as they would be) until its invoice is paid.


def _pending_for(subscription: Obj, invoice: Obj) -> bool:
    pending = subscription.get("_pending_apply")
    return bool(pending) and pending["invoice"] == invoice["id"]


def pending_update_clear(ctx: Context, subscription: Obj) -> None:
    subscription["pending_update"] = None
    subscription.pop("_pending_apply", None)
    ctx.store.touch(subscription)


def _pending_update_apply(ctx: Context, invoice: Obj) -> None:
    """The invoice of a pending update is paid: the update takes effect now."""
    subscription = _subscription_of(ctx.store, invoice)
    if subscription is None or not _pending_for(subscription, invoice):
        return
    pending = subscription["_pending_apply"]
    before = ctx.snapshot(subscription)
    for item in ctx.store.select(
        "subscription_item", lambda i: i["subscription"] == subscription["id"]
    ):
        ctx.store.remove(item["id"])
    for item in pending["items"]:
        ctx.store.add(item)
    subscription.update(pending["fields"])
    pending_update_clear(ctx, subscription)
    ctx.emit("customer.subscription.updated", subscription, before)
    ctx.emit("customer.subscription.pending_update_applied", subscription)


def _invoice_payment(ctx: Context, invoice: Obj, intent: Obj, *, status: str) -> Obj:
    now = ctx.now(invoice["test_clock"])
    for waiting in ctx.store.select(
        "invoice_payment",
        lambda p: p["payment"].get("payment_intent") == intent["id"] and p["status"] == "open",
    ):  # the payment that waited for authentication is now paid
        waiting["status"] = status
        waiting["amount_paid"] = intent["amount_received"]
        waiting["is_default"] = True
        waiting["status_transitions"]["paid_at"] = now
        ctx.store.touch(waiting)
        return waiting
    return ctx.store.add(
        {
            "id": new_id("inpay"),
            "object": "invoice_payment",
            "amount_paid": intent["amount_received"] if status == "paid" else None,
            "amount_requested": intent["amount"],
            "created": now,
            "currency": intent["currency"],
            "invoice": invoice["id"],
            "is_default": status == "paid",
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
            "status": status,
            "status_transitions": {
                "canceled_at": None,
                "paid_at": now if status == "paid" else None,
            },
        }
    )


def _subscription_status(ctx: Context, invoice: Obj, status: str) -> None:
    """A paid invoice revives an unpaid subscription; a failed one makes an active one past due."""
    subscription = _subscription_of(ctx.store, invoice)
    if subscription is None or subscription["latest_invoice"] != invoice["id"]:
        return
    held = subscription.get("_holding") or subscription.get("_pending_apply")
    if status == "past_due" and held:
        return  # an unpaid pending update leaves the subscription as it was
    current = subscription["status"]
    if (status == "active" and current in ("past_due", "incomplete", "unpaid")) or (
        status == "past_due" and current == "active"
    ):
        before = ctx.snapshot(subscription)
        subscription["status"] = status
        ctx.store.touch(subscription)
        ctx.emit("customer.subscription.updated", subscription, before)
