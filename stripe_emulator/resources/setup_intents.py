"""Setup intents: save a card for later off-session charges."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.errors import StripeError, invalid_request
from stripe_emulator.ids import new_id, random_token
from stripe_emulator.render import paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj

from .common import assign
from .payment_methods import payment_method_attach, payment_method_resolve


def setup_intent_new(
    ctx: Context,
    *,
    customer: Obj | None,
    usage: str = "off_session",
    metadata: dict[str, str] | None = None,
) -> Obj:
    intent_id = new_id("seti")
    intent = ctx.store.add(
        {
            "id": intent_id,
            "object": "setup_intent",
            "application": None,
            "automatic_payment_methods": None,
            "cancellation_reason": None,
            "client_secret": f"{intent_id}_secret_{random_token(32)}",
            "created": ctx.now(customer["test_clock"] if customer else None),
            "customer": customer["id"] if customer else None,
            "description": None,
            "flow_directions": None,
            "last_setup_error": None,
            "latest_attempt": None,
            "livemode": False,
            "mandate": None,
            "metadata": dict(metadata or {}),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_configuration_details": None,
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "single_use_mandate": None,
            "status": "requires_payment_method",
            "usage": usage,
            "excluded_payment_method_types": None,
        }
    )
    ctx.emit("setup_intent.created", intent)
    return intent


def setup_intent_confirm_with(
    ctx: Context, intent: Obj, payment_method: str, *, param: str = "payment_method"
) -> Obj:
    """Attach the card to the intent's customer; a card that declines fails the intent."""
    method = payment_method_resolve(ctx, payment_method, param=param)
    intent["payment_method"] = method["id"]
    customer = ctx.store.get(intent["customer"]) if intent["customer"] else None
    try:
        if customer is not None:
            payment_method_attach(ctx, method, customer)
    except StripeError as error:
        intent["status"] = "requires_payment_method"
        intent["last_setup_error"] = {
            "type": error.type,
            "code": error.code,
            "decline_code": error.decline_code,
            "message": error.message,
        }
        intent["payment_method"] = None
        ctx.store.touch(intent)
        ctx.emit("setup_intent.setup_failed", intent)
        raise StripeError(
            error.status,
            error.message,
            type=error.type,
            code=error.code,
            decline_code=error.decline_code,
            extra={"setup_intent": ctx.snapshot(intent)},
        ) from None
    intent["status"] = "succeeded"
    intent["last_setup_error"] = None
    ctx.store.touch(intent)
    ctx.emit("setup_intent.succeeded", intent)
    return intent


def setup_intent_create(ctx: Context, params: dict[str, Any]) -> Obj:
    customer = (
        ctx.fetch("customer", params["customer"], param="customer")
        if params.get("customer")
        else None
    )
    intent = setup_intent_new(
        ctx,
        customer=customer,
        usage=params.get("usage", "off_session"),
        metadata=params.get("metadata"),
    )
    assign(intent, params, ("description",))
    if params.get("payment_method"):
        if params.get("confirm"):
            return setup_intent_confirm_with(ctx, intent, params["payment_method"])
        intent["payment_method"] = payment_method_resolve(ctx, params["payment_method"])["id"]
        intent["status"] = "requires_confirmation"
    return intent


def setup_intent_retrieve(ctx: Context, params: dict[str, Any], intent: str) -> Obj:
    return ctx.fetch("setup_intent", intent, label="setupintent")


def setup_intent_update(ctx: Context, params: dict[str, Any], intent: str) -> Obj:
    found = ctx.fetch("setup_intent", intent, label="setupintent")
    assign(found, params, ("description",))
    if params.get("customer"):
        found["customer"] = ctx.fetch("customer", params["customer"], param="customer")["id"]
    if params.get("payment_method"):
        found["payment_method"] = payment_method_resolve(ctx, params["payment_method"])["id"]
        found["status"] = "requires_confirmation"
    ctx.store.touch(found)
    return found


def setup_intent_confirm(ctx: Context, params: dict[str, Any], intent: str) -> Obj:
    found = ctx.fetch("setup_intent", intent, label="setupintent")
    if found["status"] in ("succeeded", "canceled"):
        raise invalid_request(
            f"You cannot confirm this SetupIntent because it has a status of {found['status']}.",
            code="setup_intent_unexpected_state",
        )
    method = params.get("payment_method") or found["payment_method"]
    if not method:
        raise invalid_request(
            "You must provide a payment_method to confirm this SetupIntent.", param="payment_method"
        )
    return setup_intent_confirm_with(ctx, found, method)


def setup_intent_cancel(ctx: Context, params: dict[str, Any], intent: str) -> Obj:
    found = ctx.fetch("setup_intent", intent, label="setupintent")
    if found["status"] in ("succeeded", "canceled"):
        raise invalid_request(
            f"You cannot cancel this SetupIntent because it has a status of {found['status']}.",
            code="setup_intent_unexpected_state",
        )
    found["status"] = "canceled"
    found["cancellation_reason"] = params.get("cancellation_reason")
    ctx.store.touch(found)
    ctx.emit("setup_intent.canceled", found)
    return found


def setup_intent_list(ctx: Context, params: dict[str, Any]) -> Obj:
    intents = ctx.store.select(
        "setup_intent",
        lambda i: (
            params.get("customer", i["customer"]) == i["customer"]
            and params.get("payment_method", i["payment_method"]) == i["payment_method"]
        ),
    )
    return paginate(intents, params, "/v1/setup_intents")


ROUTES = [
    route("POST", "/v1/setup_intents", setup_intent_create, P.SetupIntentCreateParams),
    route("GET", "/v1/setup_intents", setup_intent_list, P.SetupIntentListParams),
    route("GET", "/v1/setup_intents/{intent}", setup_intent_retrieve, P.SetupIntentRetrieveParams),
    route("POST", "/v1/setup_intents/{intent}", setup_intent_update, P.SetupIntentModifyParams),
    route(
        "POST",
        "/v1/setup_intents/{intent}/confirm",
        setup_intent_confirm,
        P.SetupIntentConfirmParams,
    ),
    route(
        "POST", "/v1/setup_intents/{intent}/cancel", setup_intent_cancel, P.SetupIntentCancelParams
    ),
]
