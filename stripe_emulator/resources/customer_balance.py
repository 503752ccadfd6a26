"""A customer's credit balance: balance transactions adjust it (negative is a credit the
customer can spend), and invoicing applies it when an invoice is finalized
(``invoicing._balance_apply``)."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.errors import invalid_request
from stripe_emulator.ids import new_id
from stripe_emulator.render import paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj

from .invoicing import customer_currency_set


def balance_transaction_create(ctx: Context, params: dict[str, Any], customer: str) -> Obj:
    found = ctx.fetch("customer", customer)
    amount, currency = params.get("amount"), (params.get("currency") or "").lower()
    if not amount:
        raise invalid_request("Missing required param: amount.", param="amount")
    if not currency:
        raise invalid_request("Missing required param: currency.", param="currency")
    if found.get("currency") not in (None, currency):
        raise invalid_request(
            f"The customer's balance is in {found['currency']}, not {currency}.",
            param="currency",
        )
    before = ctx.snapshot(found)
    customer_currency_set(ctx, customer, currency)
    found["balance"] = found["balance"] + amount
    ctx.store.touch(found)
    transaction: Obj = {
        "id": new_id("cbtxn"),
        "object": "customer_balance_transaction",
        "amount": amount,
        "checkout_session": None,
        "created": ctx.now(found["test_clock"]),
        "credit_note": None,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": params.get("description"),
        "ending_balance": found["balance"],
        "invoice": None,
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "type": "adjustment",
    }
    ctx.store.add(transaction)
    ctx.emit("customer.updated", found, before)
    return transaction


def balance_transaction_list(ctx: Context, params: dict[str, Any], customer: str) -> Obj:
    ctx.fetch("customer", customer)
    found = ctx.store.select("customer_balance_transaction", lambda t: t["customer"] == customer)
    return paginate(found, params, f"/v1/customers/{customer}/balance_transactions")


ROUTES = [
    route(
        "POST",
        "/v1/customers/{customer}/balance_transactions",
        balance_transaction_create,
        P.CustomerCreateBalanceTransactionParams,
    ),
    route(
        "GET",
        "/v1/customers/{customer}/balance_transactions",
        balance_transaction_list,
        P.CustomerListBalanceTransactionsParams,
    ),
]
