"""Payment intents and charges, created when an invoice is paid; read-only over the API."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.cards import decline_error_code
from stripe_emulator.context import Context
from stripe_emulator.ids import new_id, random_token
from stripe_emulator.render import list_object, paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj

from .payment_methods import ChargeBehavior, charge_behavior


def charge_attempt(
    ctx: Context,
    *,
    customer: Obj,
    payment_method: Obj,
    amount: int,
    currency: str,
    description: str | None,
    authentication_url: str | None = None,
) -> tuple[Obj, ChargeBehavior]:
    """Charge a card off-session; returns the payment intent (succeeded or failed) and how
    the card behaved."""
    card = charge_behavior(payment_method)
    now = ctx.now(customer["test_clock"])
    intent_id = new_id("pi")
    intent: Obj = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_{random_token(24)}",
        "confirmation_method": "automatic",
        "created": now,
        "currency": currency,
        "customer": customer["id"],
        "description": description,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method["id"],
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_confirmation",
        "transfer_data": None,
        "transfer_group": None,
        "excluded_payment_method_types": None,
        "customer_account": None,
        "source": None,
    }
    ctx.store.add(intent)
    ctx.emit("payment_intent.created", intent)
    if card.requires_action and ctx.customer_present:
        ctx.emit("payment_intent.requires_action", intent)  # passed there and then
        _authenticated(ctx, intent, payment_method, now)
        return intent, ChargeBehavior()
    if card.requires_action:
        # 3-D Secure: no charge until the customer authenticates (on the hosted invoice page).
        intent["status"] = "requires_action"
        intent["next_action"] = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {
                "type": "three_d_secure_redirect",
                "stripe_js": authentication_url,
                "source": payment_method["id"],
            },
        }
        ctx.emit("payment_intent.requires_action", intent)
        return intent, card
    charge = _charge(ctx, intent, payment_method, card, now)
    intent["latest_charge"] = charge["id"]
    if card.decline_code:
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = {
            "type": "card_error",
            "code": decline_error_code(card.decline_code),
            "decline_code": card.decline_code,
            "message": card.decline_message,
            "charge": charge["id"],
        }
        intent["payment_method"] = None
        ctx.emit("charge.failed", charge)
        ctx.emit("payment_intent.payment_failed", intent)
    else:
        intent["status"] = "succeeded"
        intent["amount_received"] = amount
        ctx.emit("charge.succeeded", charge)
        ctx.emit("payment_intent.succeeded", intent)
    return intent, card


# Stripe's ``last_payment_error`` when the customer fails 3-D Secure.
AUTHENTICATION_FAILED = (
    "The provided PaymentMethod has failed authentication. You can provide "
    "payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
)


def payment_intent_authenticated(ctx: Context, intent: Obj, *, succeeded: bool) -> None:
    """The customer completed (or failed) authentication of a ``requires_action`` intent:
    the card is charged, or the intent needs another payment method."""
    method = ctx.fetch("payment_method", intent["payment_method"], label="PaymentMethod")
    intent["next_action"] = None
    if succeeded:
        now = ctx.now(ctx.fetch("customer", intent["customer"])["test_clock"])
        _authenticated(ctx, intent, method, now)
        return
    intent["status"] = "requires_payment_method"
    intent["last_payment_error"] = {
        "type": "invalid_request_error",
        "code": "payment_intent_authentication_failure",
        "message": AUTHENTICATION_FAILED,
        "payment_method": ctx.snapshot(method),
    }
    intent["payment_method"] = None
    ctx.store.touch(intent)
    ctx.emit("payment_intent.payment_failed", intent)


def _authenticated(ctx: Context, intent: Obj, method: Obj, now: int) -> None:
    """3-D Secure passed: the card is charged, the charge records the authentication."""
    charge = _charge(ctx, intent, method, ChargeBehavior(), now)
    charge["payment_method_details"]["card"]["three_d_secure"] = {
        "authentication_flow": "challenge",
        "electronic_commerce_indicator": "05",
        "result": "authenticated",
        "result_reason": None,
        "transaction_id": None,
        "version": "2.2.0",
    }
    intent["next_action"] = None
    intent["latest_charge"] = charge["id"]
    intent["status"] = "succeeded"
    intent["amount_received"] = intent["amount"]
    ctx.store.touch(intent)
    ctx.emit("charge.succeeded", charge)
    ctx.emit("payment_intent.succeeded", intent)


def payment_intent_cancel(ctx: Context, intent: Obj, reason: str) -> None:
    """An intent still waiting for authentication, given up (its invoice was voided or paid
    another way)."""
    now = ctx.now(ctx.fetch("customer", intent["customer"])["test_clock"])
    intent.update(status="canceled", canceled_at=now, cancellation_reason=reason, next_action=None)
    ctx.store.touch(intent)
    ctx.emit("payment_intent.canceled", intent)


def _outcome(card: ChargeBehavior) -> Obj:
    """The charge's ``outcome``: authorized, declined by the issuer, or blocked by Radar."""
    code = card.decline_code
    if code is None:
        network, reason, message, kind = (
            "approved_by_network",
            None,
            "Payment complete.",
            "authorized",
        )
    elif code == "fraudulent":
        network, reason, kind = "not_sent_to_network", "highest_risk_level", "blocked"
        message = "Stripe blocked this payment as too risky."
    else:
        network, reason, kind = "declined_by_network", code, "issuer_declined"
        message = (
            "The bank did not return any further details with this decline."
            if code == "generic_decline"
            else f"The bank returned the decline code `{code}`."
        )
    return {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": network,
        "reason": reason,
        "seller_message": message,
        "type": kind,
    }


def _charge(ctx: Context, intent: Obj, payment_method: Obj, card: ChargeBehavior, now: int) -> Obj:
    succeeded = card.decline_code is None
    details = payment_method["card"]
    charge_id = new_id("ch")
    return ctx.store.add(
        {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if succeeded else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None,  # balance transactions are not emulated
            "billing_details": payment_method["billing_details"],
            "calculated_statement_descriptor": "LOCAL EMULATOR",
            "captured": succeeded,
            "created": now,
            "currency": intent["currency"],
            "customer": intent["customer"],
            "description": intent["description"],
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": None if succeeded else decline_error_code(card.decline_code or ""),
            "failure_message": None if succeeded else card.decline_message,
            "fraud_details": {},
            "livemode": False,
            "metadata": {},
            "on_behalf_of": None,
            "outcome": _outcome(card),
            "paid": succeeded,
            "payment_intent": intent["id"],
            "payment_method": payment_method["id"],
            "payment_method_details": {
                "card": {
                    "brand": details["brand"],
                    "checks": details["checks"],
                    "country": details["country"],
                    "exp_month": details["exp_month"],
                    "exp_year": details["exp_year"],
                    "fingerprint": details["fingerprint"],
                    "funding": details["funding"],
                    "last4": details["last4"],
                    "network": details["brand"],
                    "amount_authorized": intent["amount"] if succeeded else None,
                    "authorization_code": None,
                    "extended_authorization": {"status": "disabled"},
                    "incremental_authorization": {"status": "unavailable"},
                    "installments": None,
                    "mandate": None,
                    "multicapture": {"status": "unavailable"},
                    "network_token": {"used": False},
                    "network_transaction_id": None,
                    "overcapture": {
                        "maximum_amount_capturable": intent["amount"],
                        "status": "unavailable",
                    },
                    "regulated_status": details.get("regulated_status"),
                    "three_d_secure": None,
                    "transaction_link_id": None,
                    "wallet": None,
                },
                "type": "card",
            },
            "receipt_email": None,
            "receipt_number": None,
            "receipt_url": None,
            "refunded": False,
            "refunds": list_object(f"/v1/charges/{charge_id}/refunds", []),
            "review": None,
            "shipping": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "succeeded" if succeeded else "failed",
            "transfer_data": None,
            "transfer_group": None,
            "source": None,
        }
    )


def payment_intent_retrieve(ctx: Context, params: dict[str, Any], intent: str) -> Obj:
    return ctx.fetch("payment_intent", intent, label="payment_intent")


def payment_intent_list(ctx: Context, params: dict[str, Any]) -> Obj:
    customer = params.get("customer")
    intents = ctx.store.select(
        "payment_intent", lambda i: customer is None or i["customer"] == customer
    )
    return paginate(intents, params, "/v1/payment_intents")


def charge_retrieve(ctx: Context, params: dict[str, Any], charge: str) -> Obj:
    return ctx.fetch("charge", charge)


def charge_list(ctx: Context, params: dict[str, Any]) -> Obj:
    charges = ctx.store.select(
        "charge",
        lambda c: (
            params.get("customer", c["customer"]) == c["customer"]
            and params.get("payment_intent", c["payment_intent"]) == c["payment_intent"]
        ),
    )
    return paginate(charges, params, "/v1/charges")


ROUTES = [
    route("GET", "/v1/payment_intents", payment_intent_list, P.PaymentIntentListParams),
    route(
        "GET",
        "/v1/payment_intents/{intent}",
        payment_intent_retrieve,
        P.PaymentIntentRetrieveParams,
    ),
    route("GET", "/v1/charges", charge_list, P.ChargeListParams),
    route("GET", "/v1/charges/{charge}", charge_retrieve, P.ChargeRetrieveParams),
]
