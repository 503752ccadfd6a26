"""``GET /v1/account``: the one account the emulator bills for (dj-stripe asks once per key)."""

from __future__ import annotations

import time
from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.ids import random_token
from stripe_emulator.routing import route
from stripe_emulator.store import Obj, Store

ACCOUNT_TYPE = "account"


def account_ensure(store: Store) -> Obj:
    """Create the account on first start; it then persists with the rest of the state."""
    existing = store.select(ACCOUNT_TYPE)
    if existing:
        return existing[0]
    account_id = f"acct_{random_token(16)}"
    return store.add(
        {
            "id": account_id,
            "object": "account",
            "business_profile": {
                "annual_revenue": None,
                "estimated_worker_count": None,
                "mcc": None,
                "minority_owned_business_designation": None,
                "name": "Local Stripe emulator",
                "product_description": None,
                "support_address": None,
                "support_email": None,
                "support_phone": None,
                "support_url": None,
                "url": None,
            },
            "business_type": None,
            "capabilities": {"card_payments": "active", "transfers": "active"},
            "charges_enabled": True,
            "controller": {"type": "account"},
            "country": "US",
            "created": int(time.time()),
            "default_currency": "usd",
            "details_submitted": True,
            "email": "emulator@example.com",
            "external_accounts": {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": f"/v1/accounts/{account_id}/external_accounts",
            },
            "future_requirements": _no_requirements(),
            "metadata": {},
            "payouts_enabled": True,
            "settings": {
                "bacs_debit_payments": {"display_name": None, "service_user_number": None},
                "branding": {
                    "icon": None,
                    "logo": None,
                    "primary_color": None,
                    "secondary_color": None,
                },
                "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
                "card_payments": {
                    "decline_on": {"avs_failure": False, "cvc_failure": False},
                    "statement_descriptor_prefix": None,
                    "statement_descriptor_prefix_kana": None,
                    "statement_descriptor_prefix_kanji": None,
                },
                "dashboard": {"display_name": "Local Stripe emulator", "timezone": "Etc/UTC"},
                "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
                "payments": {
                    "statement_descriptor": None,
                    "statement_descriptor_kana": None,
                    "statement_descriptor_kanji": None,
                    "statement_descriptor_prefix_kana": None,
                    "statement_descriptor_prefix_kanji": None,
                },
                "payouts": {
                    "debit_negative_balances": True,
                    "schedule": {"delay_days": 2, "interval": "daily"},
                    "statement_descriptor": None,
                },
                "sepa_debit_payments": {},
            },
            "requirements": _no_requirements(),
            "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
            "type": "standard",
        }
    )


def _no_requirements() -> Obj:
    """A fully verified account: nothing due, now or later."""
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    }


def account_retrieve(ctx: Context, params: dict[str, Any]) -> Obj:
    return account_ensure(ctx.store)


ROUTES = [route("GET", "/v1/account", account_retrieve, P.AccountRetrieveCurrentParams)]
