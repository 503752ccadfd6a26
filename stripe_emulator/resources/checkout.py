"""Checkout Sessions in ``setup`` and ``subscription`` mode, completed on the emulator's
hosted page (see ``hosted.py``) with a test card."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.cards import SimulatedCard, card_for_token
from stripe_emulator.context import Context
from stripe_emulator.errors import StripeError, invalid_request, only_one_of
from stripe_emulator.ids import random_token
from stripe_emulator.render import includable, list_object, paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj, Store
from stripe_emulator.timeutil import DAY

from .customers import customer_create
from .payment_methods import payment_method_attach, payment_method_from_token
from .setup_intents import setup_intent_confirm_with, setup_intent_new
from .subscription_lifecycle import recurring_price
from .subscriptions import subscription_start

SESSION = "checkout.session"

# Stripe's rule for a trial that Checkout starts with `subscription_data.trial_end`.
CHECKOUT_MIN_TRIAL_SECONDS = 48 * 3600


class CheckoutDeclined(Exception):
    """The card was declined on the hosted page; the session stays open."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def checkout_session_create(ctx: Context, params: dict[str, Any]) -> Obj:
    mode = params.get("mode")
    if mode is None:
        raise invalid_request("Missing required param: mode.", param="mode")
    if mode not in ("setup", "subscription"):
        raise invalid_request(
            "The emulator supports Checkout in setup and subscription modes only.", param="mode"
        )
    only_one_of(params, "customer", "customer_email")
    customer = (
        ctx.fetch("customer", params["customer"], param="customer")
        if params.get("customer")
        else None
    )
    line_items = params.get("line_items") or []
    if mode == "subscription" and not line_items:
        raise invalid_request("Missing required param: line_items.", param="line_items")
    if mode == "setup" and line_items:
        raise invalid_request("You cannot pass `line_items` in `setup` mode.", param="line_items")
    prices = [
        recurring_price(ctx, item, f"line_items[{index}]") for index, item in enumerate(line_items)
    ]
    amount = sum(
        price["unit_amount"] * item.get("quantity", 1)
        for price, item in zip(prices, line_items, strict=True)
    )
    now = ctx.now(customer["test_clock"] if customer else None)
    session_id = f"cs_test_{random_token(58)}"
    subscription_data = params.get("subscription_data") or {}
    trial_end = subscription_data.get("trial_end")
    if trial_end is not None and trial_end < now + CHECKOUT_MIN_TRIAL_SECONDS:
        raise invalid_request(
            "Checkout's trial_end has to be at least 48 hours in the future.",
            param="subscription_data[trial_end]",
        )
    trial = bool(subscription_data.get("trial_period_days") or trial_end)
    session: Obj = {
        "id": session_id,
        "object": SESSION,
        "after_expiration": None,
        "allow_promotion_codes": params.get("allow_promotion_codes"),
        "amount_subtotal": amount if mode == "subscription" else None,
        "amount_total": amount if mode == "subscription" else None,
        "automatic_tax": {"enabled": False, "liability": None, "status": None, "provider": None},
        "billing_address_collection": params.get("billing_address_collection"),
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": prices[0]["currency"] if prices else params.get("currency"),
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer["id"] if customer else None,
        "customer_creation": params.get(
            "customer_creation", "always" if mode == "subscription" and not customer else None
        ),
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "expires_at": params.get("expires_at") or now + DAY,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": params.get("locale"),
        "metadata": dict(params.get("metadata") or {}),
        "mode": mode,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": params.get("payment_method_collection", "always"),
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "no_payment_required" if mode == "setup" or trial else "unpaid",
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": params.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
        if mode == "subscription"
        else None,
        "ui_mode": "hosted_page",
        "url": f"{ctx.base_url}/checkout/{session_id}",
        "adaptive_pricing": None,
        "discounts": [],
        "collected_information": None,
        "permissions": None,
        "wallet_options": None,
        "origin_context": None,
        "currency_conversion": None,
        "customer_account": None,
        "integration_identifier": None,
        "_line_items": [
            {"price": price["id"], "quantity": item.get("quantity", 1)}
            for price, item in zip(prices, line_items, strict=True)
        ],
        "_subscription_data": subscription_data,
    }
    if mode == "setup":
        intent = setup_intent_new(
            ctx, customer=customer, metadata=(params.get("setup_intent_data") or {}).get("metadata")
        )
        session["setup_intent"] = intent["id"]
    return ctx.store.add(session)


def checkout_session_complete(ctx: Context, session: Obj, token: str) -> None:
    """What paying on the hosted page does; raises :class:`CheckoutDeclined` on a decline."""
    card = card_for_token(token)
    if card is None:
        raise CheckoutDeclined(f"Unknown test card '{token}'.")
    if session["mode"] == "setup":
        intent = ctx.fetch("setup_intent", session["setup_intent"])
        try:
            setup_intent_confirm_with(ctx, intent, token)
        except StripeError as error:
            raise CheckoutDeclined(error.message) from None
    else:
        _complete_subscription(ctx, session, token, card)
    session["status"] = "complete"
    customer = ctx.store.get(session["customer"]) if session["customer"] else None
    session["customer_details"] = {
        "address": customer["address"] if customer else None,
        "email": (customer or {}).get("email") or session["customer_email"],
        "name": (customer or {}).get("name"),
        "phone": None,
        "tax_exempt": (customer or {}).get("tax_exempt", "none"),
        "tax_ids": [],
        "business_name": None,
        "individual_name": None,
    }
    ctx.store.touch(session)
    ctx.emit("checkout.session.completed", session)


def _complete_subscription(ctx: Context, session: Obj, token: str, card: SimulatedCard) -> None:
    """Checkout checks the card before creating anything, so a decline leaves no trace."""
    data = session["_subscription_data"]
    trial = {key: data[key] for key in ("trial_end", "trial_period_days") if data.get(key)}
    charged_now = not trial and session["amount_total"]
    if card.declines_on_attach or (card.decline_code and charged_now):
        raise CheckoutDeclined(card.decline_message)
    customer = (
        ctx.fetch("customer", session["customer"])
        if session["customer"]
        else customer_create(
            ctx, {"email": session["customer_email"]} if session["customer_email"] else {}
        )
    )
    session["customer"] = customer["id"]
    method = payment_method_from_token(ctx, token)
    payment_method_attach(ctx, method, customer)
    subscription = subscription_start(
        ctx,
        {
            "customer": customer["id"],
            "items": session["_line_items"],
            "default_payment_method": method["id"],
            "metadata": data.get("metadata") or {},
            "description": data.get("description"),
            "payment_behavior": "error_if_incomplete",
            **trial,
        },
    )
    session["subscription"] = subscription["id"]
    session["invoice"] = subscription["latest_invoice"]
    session["payment_status"] = (
        "paid" if session["payment_status"] == "unpaid" else session["payment_status"]
    )


def _line_items(store: Store, session: Obj) -> list[Obj]:
    items = []
    for index, line in enumerate(session["_line_items"]):
        price = store.get(line["price"]) or {}
        product = store.get(price.get("product", "")) or {}
        amount = price.get("unit_amount", 0) * line["quantity"]
        items.append(
            {
                "id": f"li_{session['id'][8:30]}{index}",
                "object": "item",
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": price.get("currency"),
                "description": product.get("name"),
                "price": price,
                "quantity": line["quantity"],
                "metadata": {},
                "adjustable_quantity": None,
            }
        )
    return items


@includable(SESSION, "line_items")
def _session_line_items(store: Store, session: Obj) -> Obj:
    return list_object(
        f"/v1/checkout/sessions/{session['id']}/line_items", _line_items(store, session)
    )


@includable(SESSION, "total_details.breakdown")
def _session_breakdown(store: Store, session: Obj) -> Obj:
    return {"discounts": [], "taxes": []}


@includable("item", "discounts")
def _item_discounts(store: Store, item: Obj) -> list[Obj]:
    return []


def checkout_session_retrieve(ctx: Context, params: dict[str, Any], session: str) -> Obj:
    return ctx.fetch(SESSION, session, label="checkout.session")


def checkout_session_line_items(ctx: Context, params: dict[str, Any], session: str) -> Obj:
    found = ctx.fetch(SESSION, session, label="checkout.session")
    return paginate(
        _line_items(ctx.store, found), params, f"/v1/checkout/sessions/{session}/line_items"
    )


def checkout_session_expire(ctx: Context, params: dict[str, Any], session: str) -> Obj:
    found = ctx.fetch(SESSION, session, label="checkout.session")
    if found["status"] != "open":
        raise invalid_request(
            'Only Checkout Sessions with a status in ["open"] can be expired. '
            f'This Checkout Session has a status of "{found["status"]}".',
            param="session",
        )
    found["status"] = "expired"
    found["url"] = None
    ctx.store.touch(found)
    ctx.emit("checkout.session.expired", found)
    return found


def checkout_session_list(ctx: Context, params: dict[str, Any]) -> Obj:
    sessions = ctx.store.select(
        SESSION,
        lambda s: (
            params.get("customer", s["customer"]) == s["customer"]
            and params.get("status", s["status"]) == s["status"]
            and params.get("subscription", s["subscription"]) == s["subscription"]
        ),
    )
    return paginate(sessions, params, "/v1/checkout/sessions")


ROUTES = [
    route("POST", "/v1/checkout/sessions", checkout_session_create, P.checkout.SessionCreateParams),
    route("GET", "/v1/checkout/sessions", checkout_session_list, P.checkout.SessionListParams),
    route(
        "GET",
        "/v1/checkout/sessions/{session}",
        checkout_session_retrieve,
        P.checkout.SessionRetrieveParams,
    ),
    route(
        "GET",
        "/v1/checkout/sessions/{session}/line_items",
        checkout_session_line_items,
        P.checkout.SessionListLineItemsParams,
    ),
    route(
        "POST",
        "/v1/checkout/sessions/{session}/expire",
        checkout_session_expire,
        P.checkout.SessionExpireParams,
    ),
]
