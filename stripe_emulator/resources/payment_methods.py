"""Card payment methods made from Stripe's test tokens; attach, detach, list."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import stripe.params as P

from stripe_emulator.cards import (
    DECLINE_CODES,
    SimulatedCard,
    card_for_token,
    card_name,
    decline_message,
)
from stripe_emulator.context import Context
from stripe_emulator.errors import card_declined, invalid_request, resource_missing
from stripe_emulator.ids import new_id
from stripe_emulator.render import paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj

from .common import address, assign

LABEL = "PaymentMethod"


def payment_method_from_token(ctx: Context, token: str, *, param: str = "payment_method") -> Obj:
    card = card_for_token(token)
    if card is None:
        raise resource_missing(LABEL, token, param)
    return ctx.store.add(
        {
            "id": new_id("pm"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": address({}),
                "email": None,
                "name": None,
                "phone": None,
                "tax_id": None,
            },
            "card": _card_details(card, token),
            "created": ctx.now(),
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
            "customer_account": None,
            "_token": token,
        }
    )


def _card_details(card: SimulatedCard, token: str) -> Obj:
    return {
        "brand": card.brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass",
        },
        "country": "US",
        "display_brand": card.brand,
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": card_fingerprint(token),
        "funding": card.funding,
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
        "regulated_status": "unregulated",
    }


def card_fingerprint(token: str) -> str:
    """Stripe's fingerprint is one per card number within an account: every payment method
    made from the same test card (``pm_card_visa``, ``tok_visa``) carries the same one, so
    a card entered twice can be told apart from two cards."""
    return hashlib.sha256(f"fingerprint:{card_name(token)}".encode()).hexdigest()[:16]


def simulated_card(payment_method: Obj) -> SimulatedCard:
    """How the test card behind a payment method behaves (every one was made from a token)."""
    card = card_for_token(payment_method["_token"])
    if card is None:
        raise ValueError(f"{payment_method['id']} was not made from a test token")
    return card


@dataclass(frozen=True)
class ChargeBehavior:
    """What charging a payment method does: succeed, decline with a code, or ask for
    authentication (3-D Secure)."""

    decline_code: str | None = None
    requires_action: bool = False

    @property
    def decline_message(self) -> str:
        return decline_message(self.decline_code or "generic_decline")


def charge_behavior(payment_method: Obj) -> ChargeBehavior:
    """The test card's own behaviour, unless the emulator's control endpoint changed it (a
    card that expired, or was reported lost, after it was saved)."""
    override = payment_method.get("_charge_behavior")
    if override is not None:
        return ChargeBehavior(override.get("decline_code"), bool(override.get("requires_action")))
    card = simulated_card(payment_method)
    return ChargeBehavior(card.decline_code, card.requires_action)


def charge_behavior_set(
    payment_method: Obj, *, decline_code: str | None = None, requires_action: bool = False
) -> None:
    """Set how later charges of a saved card go; raises ``ValueError`` for a decline code
    Stripe does not document, or for a decline and authentication at once."""
    if decline_code is not None and decline_code not in DECLINE_CODES:
        raise ValueError(
            f"unknown decline_code {decline_code!r}; Stripe's are: {', '.join(DECLINE_CODES)}"
        )
    if decline_code is not None and requires_action:
        raise ValueError("give decline_code or requires_action, not both")
    payment_method["_charge_behavior"] = {
        "decline_code": decline_code,
        "requires_action": bool(requires_action),
    }


def payment_method_resolve(ctx: Context, value: str, *, param: str = "payment_method") -> Obj:
    """An existing ``pm_…`` or a fresh one made from a test token such as ``pm_card_visa``."""
    if card_for_token(value) is not None:
        return payment_method_from_token(ctx, value, param=param)
    return ctx.fetch("payment_method", value, label=LABEL, param=param)


# Stripe's answer to a payment method that was detached (detachment is permanent).
SPENT_MESSAGE = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer "
    "attachment, shared with a connected account without Customer attachment, or was "
    "detached from a Customer. It may not be used again. To use a PaymentMethod multiple "
    "times, you must attach it to a Customer first."
)


def payment_method_check_usable(payment_method: Obj, param: str = "payment_method") -> None:
    """A detached payment method can neither be attached again nor pay."""
    if payment_method.get("_detached"):
        raise invalid_request(SPENT_MESSAGE, param=param)


def payment_method_check_attachable(payment_method: Obj, customer_id: str) -> None:
    """Raise what Stripe answers when this card cannot be attached to the customer."""
    payment_method_check_usable(payment_method)
    if payment_method["customer"] not in (None, customer_id):
        raise invalid_request(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
        )
    card = simulated_card(payment_method)
    if card.declines_on_attach:
        raise card_declined(card.decline_code or "generic_decline", card.decline_message)


def payment_method_attach(ctx: Context, payment_method: Obj, customer: Obj) -> Obj:
    if payment_method["customer"] == customer["id"]:
        return payment_method
    payment_method_check_attachable(payment_method, customer["id"])
    payment_method["customer"] = customer["id"]
    ctx.store.touch(payment_method)
    ctx.emit("payment_method.attached", payment_method)
    return payment_method


def payment_method_detach(ctx: Context, params: dict[str, Any], payment_method: str) -> Obj:
    method = ctx.fetch("payment_method", payment_method, label=LABEL, param="payment_method")
    if not method["customer"]:
        raise invalid_request(
            f"The payment method {method['id']} is not attached to a customer so detachment "
            "is impossible.",
            param="payment_method",
        )
    customer = ctx.store.get(method["customer"])
    if customer and customer["invoice_settings"]["default_payment_method"] == method["id"]:
        before = ctx.snapshot(customer)
        customer["invoice_settings"]["default_payment_method"] = None
        ctx.store.touch(customer)
        ctx.emit("customer.updated", customer, before)
    previous = ctx.snapshot(method)
    method["customer"] = None
    method["_detached"] = True
    ctx.store.touch(method)
    ctx.emit("payment_method.detached", method, previous)
    return method


def payment_method_create(ctx: Context, params: dict[str, Any]) -> Obj:
    if params.get("type", "card") != "card":
        raise invalid_request("The emulator only creates card payment methods.", param="type")
    token = (params.get("card") or {}).get("token")
    if not token:
        raise invalid_request(
            "Raw card numbers are not accepted; use a test token such as card[token]=tok_visa.",
            param="card",
        )
    method = payment_method_from_token(ctx, token, param="card[token]")
    assign(method, params, ("allow_redisplay",))
    return method


def payment_method_retrieve(ctx: Context, params: dict[str, Any], payment_method: str) -> Obj:
    return payment_method_resolve(ctx, payment_method)


def payment_method_update(ctx: Context, params: dict[str, Any], payment_method: str) -> Obj:
    method = ctx.fetch("payment_method", payment_method, label=LABEL, param="payment_method")
    before = ctx.snapshot(method)
    assign(method, params, ("allow_redisplay",))
    details = params.get("billing_details")
    if details:
        for key in ("email", "name", "phone"):
            if key in details:
                method["billing_details"][key] = details[key] or None
        if "address" in details:
            method["billing_details"]["address"] = address(details["address"]) or address({})
    ctx.store.touch(method)
    ctx.emit("payment_method.updated", method, before)
    return method


def payment_method_attach_endpoint(
    ctx: Context, params: dict[str, Any], payment_method: str
) -> Obj:
    customer = ctx.fetch("customer", params.get("customer"), param="customer")
    return payment_method_attach(ctx, payment_method_resolve(ctx, payment_method), customer)


def payment_method_list(ctx: Context, params: dict[str, Any]) -> Obj:
    customer = params.get("customer")
    if customer:
        ctx.fetch("customer", customer, param="customer")
    methods = ctx.store.select(
        "payment_method",
        lambda m: (
            (customer is None or m["customer"] == customer)
            and params.get("type", m["type"]) == m["type"]
            and m["customer"] is not None
        ),
    )
    return paginate(methods, params, "/v1/payment_methods")


def customer_payment_method_list(ctx: Context, params: dict[str, Any], customer: str) -> Obj:
    ctx.fetch("customer", customer, param="customer")
    methods = ctx.store.select(
        "payment_method",
        lambda m: m["customer"] == customer and params.get("type", m["type"]) == m["type"],
    )
    return paginate(methods, params, f"/v1/customers/{customer}/payment_methods")


def customer_payment_method_retrieve(
    ctx: Context, params: dict[str, Any], customer: str, payment_method: str
) -> Obj:
    ctx.fetch("customer", customer, param="customer")
    method = ctx.fetch("payment_method", payment_method, label=LABEL, param="payment_method")
    if method["customer"] != customer:
        raise resource_missing(LABEL, payment_method, "payment_method")
    return method


ROUTES = [
    route("POST", "/v1/payment_methods", payment_method_create, P.PaymentMethodCreateParams),
    route("GET", "/v1/payment_methods", payment_method_list, P.PaymentMethodListParams),
    route(
        "GET",
        "/v1/payment_methods/{payment_method}",
        payment_method_retrieve,
        P.PaymentMethodRetrieveParams,
    ),
    route(
        "POST",
        "/v1/payment_methods/{payment_method}",
        payment_method_update,
        P.PaymentMethodModifyParams,
    ),
    route(
        "POST",
        "/v1/payment_methods/{payment_method}/attach",
        payment_method_attach_endpoint,
        P.PaymentMethodAttachParams,
    ),
    route(
        "POST",
        "/v1/payment_methods/{payment_method}/detach",
        payment_method_detach,
        P.PaymentMethodDetachParams,
    ),
    route(
        "GET",
        "/v1/customers/{customer}/payment_methods",
        customer_payment_method_list,
        P.CustomerListPaymentMethodsParams,
    ),
    route(
        "GET",
        "/v1/customers/{customer}/payment_methods/{payment_method}",
        customer_payment_method_retrieve,
        P.CustomerRetrievePaymentMethodParams,
    ),
]
