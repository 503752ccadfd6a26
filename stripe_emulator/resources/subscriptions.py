"""Subscription endpoints: create (trials, first invoice), update (items, prorations,
cancellation, trial changes), cancel now, resume, list. Periods live on the subscription
items, as at the dahlia API version; renewals happen in ``subscription_lifecycle``."""

from __future__ import annotations

import copy
from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.errors import StripeError, card_declined, invalid_request, only_one_of
from stripe_emulator.ids import new_id
from stripe_emulator.render import paginate, render
from stripe_emulator.routing import route
from stripe_emulator.store import Obj
from stripe_emulator.timeutil import DAY, add_interval

from .common import UNSET, assign, created_filter
from .coupons import subscription_discounts_set
from .invoicing import (
    REQUIRES_ACTION_MESSAGE,
    invoice_finalize,
    invoice_open,
)
from .payment_methods import charge_behavior
from .pricing import item_amount
from .subscription_lifecycle import (
    ENDED,
    cycle_invoice,
    invoice_now,
    item_changes_apply,
    item_new,
    items_check,
    proration_date_check,
    recurring_price,
    set_period,
    subscription_end,
    subscription_items,
    subscription_period,
)


def _default_payment_method(ctx: Context, customer: Obj, method_id: str | None) -> Obj | None:
    method_id = method_id or customer["invoice_settings"]["default_payment_method"]
    if not method_id:
        return None
    method = ctx.store.get(method_id)
    if (
        method is None
        or method.get("object") != "payment_method"
        or method["customer"] != customer["id"]
    ):
        raise invalid_request(
            f"The customer does not have a payment method with the ID {method_id}. "
            "The payment method must be attached to the customer.",
            param="default_payment_method",
        )
    return method


def _trial_end(params: dict[str, Any], prices: list[Obj], now: int) -> int | None:
    trial_end = params.get("trial_end")
    if trial_end == "now":
        return None
    if isinstance(trial_end, int):
        if trial_end <= now:
            raise invalid_request(
                "Invalid timestamp: must be an integer Unix timestamp in the future.",
                param="trial_end",
            )
        return trial_end
    days = params.get("trial_period_days")
    if days is None and params.get("trial_from_plan"):
        days = prices[0]["recurring"]["trial_period_days"]
    return now + days * DAY if days else None


def subscription_create(ctx: Context, params: dict[str, Any]) -> Obj:
    return subscription_start(ctx, params)


def subscription_start(ctx: Context, params: dict[str, Any]) -> Obj:
    """Create a subscription and settle its first invoice (free during a trial)."""
    customer = ctx.fetch("customer", params.get("customer"), param="customer")
    if not params.get("items"):
        raise invalid_request("Missing required param: items.", param="items")
    prices = [
        recurring_price(ctx, spec, f"items[{index}]") for index, spec in enumerate(params["items"])
    ]
    items_check(prices, params["items"], "items")
    only_one_of(params, "cancel_at", "cancel_at_period_end")
    intervals = {(p["recurring"]["interval"], p["recurring"]["interval_count"]) for p in prices}
    now = ctx.now(customer["test_clock"])
    trial_end = _trial_end(params, prices, now)
    method = _default_payment_method(ctx, customer, params.get("default_payment_method"))
    collection = params.get("collection_method", "charge_automatically")
    behavior = params.get("payment_behavior", "allow_incomplete")
    first_amount = (
        0
        if trial_end
        else sum(
            item_amount(p, s.get("quantity", 1))
            for p, s in zip(prices, params["items"], strict=True)
        )
    )
    charged_now = bool(first_amount) and collection == "charge_automatically"
    if charged_now and behavior != "default_incomplete":
        if method is None:
            raise invalid_request(
                "This customer has no attached payment source or default payment method. "
                "Please consider adding a default payment method."
            )
        outcome = charge_behavior(method)
        if behavior == "error_if_incomplete" and outcome.decline_code:
            raise card_declined(outcome.decline_code, outcome.decline_message)
    # The first payment is settled within this request, so the subscription is announced
    # with the status it ends the request with, as Stripe does.
    pays_now = not charged_now or (
        behavior != "default_incomplete"
        and method is not None
        and not charge_behavior(method).decline_code
        and not (charge_behavior(method).requires_action and not ctx.customer_present)
    )
    status = "trialing" if trial_end else ("active" if pays_now else "incomplete")
    interval, count = next(iter(intervals))
    period_end = trial_end or add_interval(now, interval, count)
    subscription: Obj = {
        "id": new_id("sub"),
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
        "billing_cycle_anchor": trial_end or now,
        "billing_cycle_anchor_config": None,
        "cancel_at": None,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": collection,
        "created": now,
        "currency": prices[0]["currency"],
        "customer": customer["id"],
        "days_until_due": params.get("days_until_due") if collection == "send_invoice" else None,
        "default_payment_method": params.get("default_payment_method"),
        "default_source": None,
        "default_tax_rates": [],
        "description": params.get("description"),
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": status,
        "test_clock": customer["test_clock"],
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": now if trial_end else None,
        "cancel_at_period_end": False,
        "billing_thresholds": None,
        "billing_mode": {"type": "classic", "flexible": None},
        "customer_account": None,
    }
    ctx.store.add(subscription)
    if "discounts" in params:
        subscription_discounts_set(ctx, subscription, params["discounts"])
    for price, spec in zip(prices, params["items"], strict=True):
        item_new(ctx, subscription, price, spec, (now, period_end))
    if params.get("cancel_at_period_end"):
        _cancel_at(ctx, subscription, period_end)
    ctx.emit("customer.subscription.created", subscription)
    invoice = cycle_invoice(
        ctx, subscription, "subscription_create", (now, now), trial=bool(trial_end)
    )
    if behavior == "default_incomplete" and first_amount:
        subscription["latest_invoice"] = invoice["id"]
        invoice["auto_advance"] = False
        invoice_open(ctx, invoice)
        invoice_finalize(ctx, invoice)
    else:
        invoice_now(ctx, subscription, invoice)
    return subscription


# With one billing period per subscription here, each of these named moments is its end.
_PERIOD_END_NAMES = {"min_period_end", "max_period_end", "max_billed_until"}


def _cancel_at(ctx: Context, subscription: Obj, when: int | str | None) -> None:
    if when in _PERIOD_END_NAMES:
        when = subscription_period(ctx.store, subscription)[1]
    elif when is not None and when <= ctx.now(subscription["test_clock"]):
        raise invalid_request("cancel_at must be in the future.", param="cancel_at")
    subscription["cancel_at"] = when
    subscription["cancel_at_period_end"] = (
        when is not None and when == subscription_period(ctx.store, subscription)[1]
    )
    subscription["canceled_at"] = ctx.now(subscription["test_clock"]) if when else None
    subscription["cancellation_details"]["reason"] = "cancellation_requested" if when else None


def subscription_retrieve(ctx: Context, params: dict[str, Any], subscription: str) -> Obj:
    return ctx.fetch("subscription", subscription)


# What a canceled subscription still lets one change.
_ENDED_UPDATABLE = {"metadata", "cancellation_details", "expand"}


def subscription_update(ctx: Context, params: dict[str, Any], subscription: str) -> Obj:
    found = ctx.fetch("subscription", subscription)
    if found["status"] in ENDED:
        if set(params) - _ENDED_UPDATABLE:
            raise invalid_request(
                "A canceled subscription can only update its cancellation_details and metadata.",
                param=sorted(set(params) - _ENDED_UPDATABLE)[0],
            )
        before = ctx.snapshot(found)
        _cancellation_details_apply(found, params)
        assign(found, params, ())
        ctx.store.touch(found)
        ctx.emit("customer.subscription.updated", found, before)
        return found
    only_one_of(params, "cancel_at", "cancel_at_period_end")
    behavior = params.get("payment_behavior", "allow_incomplete")
    if behavior == "pending_if_incomplete":
        _pending_params_check(found, params)
    proration_date_check(ctx.store, found, params)
    customer = ctx.fetch("customer", found["customer"])
    before = ctx.snapshot(found)
    held = _held_state(ctx, found)
    if behavior == "pending_if_incomplete":
        found["_holding"] = True  # a failed payment must not make it past_due meanwhile
    collect = behavior != "default_incomplete"
    _cancellation_details_apply(found, params)
    now = params.get("proration_date") or ctx.now(found["test_clock"])
    if params.get("default_payment_method"):
        _default_payment_method(ctx, customer, params["default_payment_method"])
    assign(found, params, ("default_payment_method", "description", "days_until_due"))
    if "discounts" in params:
        subscription_discounts_set(ctx, found, params["discounts"])
    if "items" in params:
        item_changes_apply(
            ctx,
            found,
            params["items"],
            behavior=params.get("proration_behavior", "create_prorations"),
            at=now,
            param="items",
            collect=collect,
        )
    if "cancel_at_period_end" in params:
        _cancel_at(
            ctx,
            found,
            subscription_period(ctx.store, found)[1] if params["cancel_at_period_end"] else None,
        )
    if "cancel_at" in params:
        _cancel_at(ctx, found, None if params["cancel_at"] == UNSET else params["cancel_at"])
    trial_end = params.get("trial_end")
    if trial_end is not None and found["status"] == "trialing":
        _trial_change(ctx, found, trial_end, now, collect=collect)
    found.pop("_holding", None)
    unpaid = _unpaid_new_invoice(ctx, found, held)
    decline = None
    if unpaid is not None and behavior == "error_if_incomplete":
        error = _payment_error(ctx, unpaid)
        ctx.store.rollback()  # Stripe does not update the subscription at all
        ctx.events.clear()
        raise error
    if unpaid is not None and behavior == "pending_if_incomplete":
        _hold(ctx, found, held, unpaid, params)
        error = _payment_error(ctx, unpaid)
        # A decline answers 402; authentication required (or no card) answers 200, the
        # subscription showing its pending_update.
        decline = error if error.decline_code else None
    if unpaid is not None and behavior == "default_incomplete" and unpaid["amount_due"] > 0:
        found["status"] = "past_due"  # until the invoice's payment is confirmed
    ctx.store.touch(found)
    ctx.emit("customer.subscription.updated", found, before)
    if decline is not None:
        raise decline  # 402: recorded, not undone; the subscription keeps its pending_update
    return found


# What Stripe lets an update with ``payment_behavior=pending_if_incomplete`` carry: only
# what decides prorations or makes an invoice ("Pending updates reference").
PENDING_UPDATE_PARAMS = frozenset(
    {
        "expand",
        "payment_behavior",
        "proration_behavior",
        "proration_date",
        "billing_cycle_anchor",
        "items",
        "trial_end",
        "trial_from_plan",
        "add_invoice_items",
    }
)
PENDING_UPDATE_ITEM_PARAMS = frozenset({"id", "price", "quantity"})
# A pending update expires at the trial's or the period's end, and at most 23 hours after
# the update was made.
PENDING_UPDATE_LIFETIME = 23 * 3600


def _pending_params_check(subscription: Obj, params: dict[str, Any]) -> None:
    allowed = ", ".join(sorted(PENDING_UPDATE_PARAMS))
    for name in sorted(params):
        if name not in PENDING_UPDATE_PARAMS:
            raise invalid_request(
                f"You cannot pass `{name}` with `payment_behavior=pending_if_incomplete`; "
                f"pending updates support only: {allowed}.",
                param=name,
            )
    for index, spec in enumerate(params.get("items") or []):
        for name in sorted(spec):
            if name not in PENDING_UPDATE_ITEM_PARAMS:
                raise invalid_request(
                    f"You cannot pass `items[{index}][{name}]` with "
                    "`payment_behavior=pending_if_incomplete`; items in pending updates "
                    "support only id, price and quantity.",
                    param=f"items[{index}][{name}]",
                )
    if subscription["collection_method"] == "send_invoice":
        raise invalid_request(
            "Pending updates are not supported for subscriptions with "
            "`collection_method=send_invoice`.",
            param="payment_behavior",
        )


def _held_state(ctx: Context, subscription: Obj) -> dict[str, Any]:
    """The subscription and its items as they are, to put back if the update is held."""
    return {
        "subscription": copy.deepcopy(subscription),
        "items": [copy.deepcopy(item) for item in subscription_items(ctx.store, subscription)],
    }


def _unpaid_new_invoice(ctx: Context, subscription: Obj, held: dict[str, Any]) -> Obj | None:
    """The invoice this update issued, when it is left unpaid."""
    latest = subscription["latest_invoice"]
    if not latest or latest == held["subscription"]["latest_invoice"]:
        return None
    invoice = ctx.store.get(latest)
    return invoice if invoice is not None and invoice["status"] == "open" else None


def _payment_error(ctx: Context, invoice: Obj) -> StripeError:
    """Why the invoice's payment did not go through, as the update answers it."""
    intents = [
        ctx.store.get(payment["payment"]["payment_intent"])
        for payment in ctx.store.select("invoice_payment", lambda p: p["invoice"] == invoice["id"])
    ]
    for intent in (i for i in intents if i is not None):
        error = intent.get("last_payment_error")
        if intent["status"] == "requires_payment_method" and error:
            return StripeError(
                402,
                error["message"],
                type="card_error",
                code=error.get("code") or "card_declined",
                decline_code=error.get("decline_code") or "generic_decline",
            )
    for intent in (i for i in intents if i is not None and i["status"] == "requires_action"):
        return StripeError(
            402,
            REQUIRES_ACTION_MESSAGE,
            type="card_error",
            code="invoice_payment_intent_requires_action",
            extra={"payment_intent": render(ctx.store, intent)},
        )
    return invalid_request(
        "This customer has no attached payment source or default payment method. "
        "Please consider adding a default payment method."
    )


def _hold(
    ctx: Context, subscription: Obj, held: dict[str, Any], invoice: Obj, params: dict[str, Any]
) -> None:
    """Put the subscription back as it was, keeping the update in ``pending_update`` until
    ``invoice`` is paid."""
    was = held["subscription"]
    after_items = subscription_items(ctx.store, subscription)
    shown_items = [render(ctx.store, item) for item in after_items]
    fields = {
        key: value
        for key, value in subscription.items()
        if not key.startswith("_")
        and key not in ("latest_invoice", "pending_update")
        and was.get(key) != value
    }
    for item in after_items:
        ctx.store.remove(item["id"])
    for item in held["items"]:
        ctx.store.add(item)
    pending_apply = {
        "invoice": invoice["id"],
        "fields": copy.deepcopy(fields),
        "items": [copy.deepcopy(item) for item in after_items],
    }
    for key in list(subscription):
        if not key.startswith("_") and key not in ("latest_invoice",):
            subscription[key] = was.get(key)
    now = ctx.now(subscription["test_clock"])
    ends = [now + PENDING_UPDATE_LIFETIME, subscription_period(ctx.store, subscription)[1]]
    if subscription["status"] == "trialing" and subscription["trial_end"]:
        ends.append(subscription["trial_end"])
    subscription["pending_update"] = {
        "billing_cycle_anchor": fields.get("billing_cycle_anchor")
        if "billing_cycle_anchor" in params
        else None,
        "expires_at": min(ends),
        "subscription_items": shown_items if "items" in params else None,
        "trial_end": fields.get("trial_end") if "trial_end" in params else None,
        "trial_from_plan": params.get("trial_from_plan"),
    }
    subscription["_pending_apply"] = pending_apply
    ctx.store.touch(subscription)


def _trial_change(
    ctx: Context, subscription: Obj, trial_end: Any, now: int, *, collect: bool = True
) -> None:
    if trial_end == "now":
        subscription["trial_end"] = now
        subscription["status"] = "active"
        price = ctx.fetch("price", subscription_items(ctx.store, subscription)[0]["price"])
        recurring = price["recurring"]
        set_period(
            ctx,
            subscription,
            now,
            add_interval(now, recurring["interval"], recurring["interval_count"]),
        )
        subscription["billing_cycle_anchor"] = now
        invoice = cycle_invoice(ctx, subscription, "subscription_update", (now, now), trial=False)
        invoice_now(ctx, subscription, invoice, collect=collect)
        return
    if trial_end <= now:
        raise invalid_request(
            "Invalid timestamp: must be an integer Unix timestamp in the future.", param="trial_end"
        )
    subscription["trial_end"] = trial_end
    subscription["billing_cycle_anchor"] = trial_end
    start, _ = subscription_period(ctx.store, subscription)
    set_period(ctx, subscription, start, trial_end)


def subscription_cancel(ctx: Context, params: dict[str, Any], subscription: str) -> Obj:
    found = ctx.fetch("subscription", subscription)
    if found["status"] in ENDED:
        raise invalid_request("This subscription has already been canceled.", param="subscription")
    _cancellation_details_apply(found, params)
    subscription_end(ctx, found, reason="cancellation_requested")
    return found


def _cancellation_details_apply(subscription: Obj, params: dict[str, Any]) -> None:
    details = params.get("cancellation_details") or {}
    for key in ("comment", "feedback"):
        if key in details:
            subscription["cancellation_details"][key] = details[key] or None


def subscription_resume(ctx: Context, params: dict[str, Any], subscription: str) -> Obj:
    found = ctx.fetch("subscription", subscription)
    if found["status"] != "paused":
        raise invalid_request(
            "Only paused subscriptions can be resumed; to undo a scheduled cancellation, "
            "update the subscription with cancel_at_period_end=false.",
            param="subscription",
        )
    return found


def subscription_list(ctx: Context, params: dict[str, Any]) -> Obj:
    status = params.get("status")
    price = params.get("price") or params.get("plan")

    def matches(subscription: Obj) -> bool:
        if status is None and subscription["status"] in ENDED:
            return False
        if status == "ended" and subscription["status"] not in ENDED:
            return False
        if status not in (None, "all", "ended") and subscription["status"] != status:
            return False
        if price and price not in {
            item["price"] for item in subscription_items(ctx.store, subscription)
        }:
            return False
        return (
            params.get("customer", subscription["customer"]) == subscription["customer"]
            and params.get("test_clock", subscription["test_clock"]) == subscription["test_clock"]
            and params.get("collection_method", subscription["collection_method"])
            == subscription["collection_method"]
            and created_filter(subscription, params.get("created"))
        )

    return paginate(ctx.store.select("subscription", matches), params, "/v1/subscriptions")


ROUTES = [
    route("POST", "/v1/subscriptions", subscription_create, P.SubscriptionCreateParams),
    route("GET", "/v1/subscriptions", subscription_list, P.SubscriptionListParams),
    route(
        "GET",
        "/v1/subscriptions/{subscription}",
        subscription_retrieve,
        P.SubscriptionRetrieveParams,
    ),
    route(
        "POST", "/v1/subscriptions/{subscription}", subscription_update, P.SubscriptionModifyParams
    ),
    route(
        "DELETE",
        "/v1/subscriptions/{subscription}",
        subscription_cancel,
        P.SubscriptionCancelParams,
    ),
    route(
        "POST",
        "/v1/subscriptions/{subscription}/resume",
        subscription_resume,
        P.SubscriptionResumeParams,
    ),
]
