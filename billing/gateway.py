"""The one door to Stripe: nothing else in the portal imports `stripe` (ruff's TID251 holds
that line). It pins the API version, honours STRIPE_API_BASE (the local emulator), sets
timeouts, sends a deterministic idempotency key with every write that creates something or
changes a customer's billing (updates that are harmless to repeat, such as deactivating a
price, go without), and turns Stripe's errors into ours with a message fit for a customer.
"""

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import stripe
from django.conf import settings

from .errors import BillingError, BillingNotEnabled, GatewayUnavailable, PaymentDeclined
from .webhook_events import WEBHOOK_EVENTS

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15
NETWORK_RETRIES = 2

P = ParamSpec("P")
R = TypeVar("R")


def translate_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Let only our own errors out of the gateway."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except stripe.CardError as error:
            raise PaymentDeclined(
                error.user_message,
                decline_code=getattr(error.error, "decline_code", None),
                code=error.code,
                param=error.param,
            ) from error
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            logger.warning("Stripe unavailable: %s", error)
            raise GatewayUnavailable() from error
        except stripe.InvalidRequestError as error:
            raise BillingError(error.user_message, code=error.code, param=error.param) from error
        except (stripe.AuthenticationError, stripe.PermissionError) as error:
            logger.error("Stripe refused the portal's key: %s", error)
            raise BillingError("Billing is misconfigured; the operator has been told.") from error
        except stripe.StripeError as error:
            if error.http_status is None or error.http_status >= 500:
                logger.warning("Stripe error %s: %s", error.http_status, error)
                raise GatewayUnavailable() from error
            raise BillingError(error.user_message, code=error.code) from error

    return wrapper


def as_json(stripe_object: stripe.StripeObject) -> dict:
    """Plain JSON, as the API sent it (stripe-python turns `*_decimal` strings into Decimal),
    for dj-stripe's mirror and for callers that should not hold stripe-python objects."""
    return json.loads(json.dumps(stripe_object.to_dict(), default=str))


def _missing(error: stripe.InvalidRequestError) -> bool:
    return error.code == "resource_missing"


def idempotency_key(*parts: object) -> str:
    """The same operation on the same objects always sends the same key, so a retry (by a
    task, or by a customer clicking again) can never do the thing twice."""
    return "portal:" + ":".join(str(part) for part in parts)


@functools.cache
def _client(
    api_key: str, api_base: str, http_client: stripe.HTTPClient | None
) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=NETWORK_RETRIES,
        http_client=http_client or stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
    )


def api_base_apply() -> None:
    """Point stripe-python's global API base, which dj-stripe uses, at STRIPE_API_BASE.
    (dj-stripe's own STRIPE_API_HOST setting works too, but warns on every command.)"""
    if settings.STRIPE_API_BASE:
        stripe.api_base = settings.STRIPE_API_BASE


def client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise BillingNotEnabled()
    # stripe.default_http_client is how the tests' in-process emulator is plugged in, for
    # us and for dj-stripe alike; in production it is unset.
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, stripe.default_http_client)


# --- Customers --------------------------------------------------------------------------------


@translate_errors
def customer_find_by_customer_id(*, customer_id: str) -> str | None:
    """The Stripe customer carrying our id in its metadata, if one exists (a lost link)."""
    found = client().v1.customers.search(
        {"query": f"metadata['customer_id']:'{customer_id}'", "limit": 1}
    )
    return found.data[0].id if found.data else None


@translate_errors
def customer_ids_all() -> set[str]:
    """The ids of every customer of the Stripe account, a hundred a request."""
    listed = client().v1.customers.list({"limit": 100})
    return {customer.id for customer in listed.auto_paging_iter()}


@translate_errors
def customer_create(*, customer_id: str, email: str, name: str = "") -> str:
    params: dict[str, Any] = {"email": email, "metadata": {"customer_id": customer_id}}
    if name:
        params["name"] = name
    created = client().v1.customers.create(
        params, {"idempotency_key": idempotency_key("customer-create", customer_id)}
    )
    return created.id


@translate_errors
def customer_default_payment_method_set(
    *, stripe_customer_id: str, payment_method_id: str, request_key: str
) -> None:
    client().v1.customers.update(
        stripe_customer_id,
        {"invoice_settings": {"default_payment_method": payment_method_id}},
        {"idempotency_key": idempotency_key("default-pm", stripe_customer_id, request_key)},
    )


# --- Cards ------------------------------------------------------------------------------------


@translate_errors
def checkout_setup_session_create(
    *,
    stripe_customer_id: str,
    customer_id: str,
    success_url: str,
    cancel_url: str,
    request_key: str,
) -> tuple[str, str]:
    """A Checkout Session in setup mode: Stripe's page takes the card, we never see it.
    Returns the session id and the URL to send the customer to."""
    session = client().v1.checkout.sessions.create(
        {
            "mode": "setup",
            "customer": stripe_customer_id,
            "payment_method_types": ["card"],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": {"customer_id": customer_id},
            "setup_intent_data": {"metadata": {"customer_id": customer_id}},
        },
        {"idempotency_key": idempotency_key("checkout-setup", customer_id, request_key)},
    )
    return session.id, session.url


@translate_errors
def checkout_session_setup_result(*, session_id: str) -> tuple[str, str | None]:
    """(customer, payment method once the card is saved) of a setup-mode Checkout Session."""
    session = client().v1.checkout.sessions.retrieve(session_id, {"expand": ["setup_intent"]})
    setup_intent = session.setup_intent
    payment_method = None
    if setup_intent is not None and setup_intent.status == "succeeded":
        payment_method = setup_intent.payment_method
    return session.customer, payment_method


@translate_errors
def payment_method_retrieve(*, payment_method_id: str) -> dict:
    return as_json(client().v1.payment_methods.retrieve(payment_method_id))


@translate_errors
def payment_method_detach(*, payment_method_id: str) -> stripe.PaymentMethod:
    return client().v1.payment_methods.detach(
        payment_method_id,
        options={"idempotency_key": idempotency_key("pm-detach", payment_method_id)},
    )


# --- Billing details (read live, written to Stripe; never stored by us) ----------------------

ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "state", "country")


@dataclass(frozen=True)
class BillingDetails:
    name: str = ""
    email: str = ""
    phone: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    postal_code: str = ""
    state: str = ""
    country: str = ""
    vat_number: str = ""


def vat_type(vat_number: str) -> str:
    """Stripe's tax id type for a VAT number: the UK's own, else the EU's."""
    return "gb_vat" if vat_number.upper().startswith("GB") else "eu_vat"


@translate_errors
def customer_billing_details(*, stripe_customer_id: str) -> BillingDetails:
    api = client().v1.customers
    customer = api.retrieve(stripe_customer_id)
    address = customer.address or {}
    vat = [t.value for t in api.tax_ids.list(stripe_customer_id).data if t.type.endswith("_vat")]
    return BillingDetails(
        name=customer.name or "",
        email=customer.email or "",
        phone=customer.phone or "",
        vat_number=vat[0] if vat else "",
        **{field: address.get(field) or "" for field in ADDRESS_FIELDS},
    )


@translate_errors
def customer_billing_details_update(
    *, stripe_customer_id: str, details: BillingDetails, request_key: str
) -> None:
    """Write the details to Stripe. A new VAT number is added before the old one goes, so an
    invalid one (Stripe checks the format) leaves the old in place."""
    api = client().v1.customers
    key = functools.partial(idempotency_key, "billing-details", stripe_customer_id, request_key)
    current = [t for t in api.tax_ids.list(stripe_customer_id).data if t.type.endswith("_vat")]
    if details.vat_number and details.vat_number not in [t.value for t in current]:
        api.tax_ids.create(
            stripe_customer_id,
            {"type": vat_type(details.vat_number), "value": details.vat_number},
            {"idempotency_key": key("vat", details.vat_number)},
        )
    for tax_id in current:
        if tax_id.value != details.vat_number:
            api.tax_ids.delete(stripe_customer_id, tax_id.id)
    api.update(
        stripe_customer_id,
        {
            "name": details.name,
            "email": details.email,
            "phone": details.phone,
            "address": {field: getattr(details, field) for field in ADDRESS_FIELDS},
        },
        # Keyed by the content too: the same form sent again with other values is a new write.
        {"idempotency_key": key("customer", hashlib.sha256(repr(details).encode()).hexdigest())},
    )


# --- Webhook endpoint (stripe_setup) ----------------------------------------------------------


@translate_errors
def webhook_endpoint_create(*, url: str, djstripe_uuid: str) -> dict:
    """Register a webhook URL; the answer is the only time Stripe shows its secret."""
    endpoint = client().v1.webhook_endpoints.create(
        {
            "url": url,
            "enabled_events": list(WEBHOOK_EVENTS),
            "api_version": settings.STRIPE_API_VERSION,
            "description": "Billing Portal (dj-stripe)",
            "metadata": {"djstripe_uuid": djstripe_uuid},
        },
        {"idempotency_key": idempotency_key("webhook-endpoint", djstripe_uuid)},
    )
    return as_json(endpoint)


@translate_errors
def webhook_endpoint_retrieve(*, endpoint_id: str) -> dict | None:
    try:
        return as_json(client().v1.webhook_endpoints.retrieve(endpoint_id))
    except stripe.InvalidRequestError as error:
        if _missing(error):
            return None
        raise


@translate_errors
def webhook_endpoint_update(*, endpoint_id: str, url: str) -> dict:
    """Set the endpoint's URL and events. No idempotency key: setting the same values
    twice is harmless, and a key would replay a stale answer if the URL moves back."""
    return as_json(
        client().v1.webhook_endpoints.update(
            endpoint_id, {"url": url, "enabled_events": list(WEBHOOK_EVENTS), "disabled": False}
        )
    )


# --- Catalog (stripe_setup) -------------------------------------------------------------------


@translate_errors
def product_ensure(*, product_id: str, name: str, plan_code: str) -> str:
    """The plan's product, by our own id; returns what was done."""
    api = client().v1.products
    try:
        product = api.retrieve(product_id)
    except stripe.InvalidRequestError as error:
        if not _missing(error):
            raise
        api.create(
            {"id": product_id, "name": name, "metadata": {"plan_code": plan_code}},
            {"idempotency_key": idempotency_key("product", product_id)},
        )
        return "created"
    if product.name == name and product.active:
        return "unchanged"
    api.update(product_id, {"name": name, "active": True})
    return "updated"


@translate_errors
def price_for_lookup_key(*, lookup_key: str) -> dict | None:
    found = client().v1.prices.list({"lookup_keys": [lookup_key], "limit": 1})
    return as_json(found.data[0]) if found.data else None


@translate_errors
def price_create_monthly(
    *, product_id: str, amount: int, currency: str, lookup_key: str, replaces: str | None
) -> list[dict]:
    """A monthly price that takes the lookup key from the price it replaces, if any, which
    is deactivated. Returns the prices as they now are, the new one first."""
    price = client().v1.prices.create(
        {
            "product": product_id,
            "unit_amount": amount,
            "currency": currency,
            "recurring": {"interval": "month"},
            "lookup_key": lookup_key,
            "transfer_lookup_key": replaces is not None,
        },
        {"idempotency_key": idempotency_key("price", lookup_key, amount, currency, replaces)},
    )
    changed = [as_json(price)]
    if replaces:
        changed.append(as_json(client().v1.prices.update(replaces, {"active": False})))
    return changed


# --- Subscriptions ----------------------------------------------------------------------------


@translate_errors
def checkout_subscription_session_create(
    *,
    stripe_customer_id: str,
    customer_id: str,
    plan_code: str,
    price_id: str,
    trial_end: int | None,
    success_url: str,
    cancel_url: str,
    request_key: str,
) -> tuple[str, str]:
    """A Checkout Session in subscription mode; returns its id and URL. Our ids ride along
    in the metadata of the session and of the subscription it creates."""
    metadata = {"customer_id": customer_id, "plan_code": plan_code}
    subscription_data: dict[str, Any] = {"metadata": metadata}
    if trial_end:
        subscription_data["trial_end"] = trial_end
    session = client().v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": stripe_customer_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            "subscription_data": subscription_data,
        },
        {"idempotency_key": idempotency_key("checkout-subscription", customer_id, request_key)},
    )
    return session.id, session.url


@translate_errors
def checkout_open_subscription_sessions_expire(*, stripe_customer_id: str, keep: str) -> int:
    """Expire the customer's other open upgrade sessions, so two tabs cannot both pay."""
    api = client().v1.checkout.sessions
    expired = 0
    for session in api.list({"customer": stripe_customer_id, "status": "open", "limit": 100}):
        if session.mode == "subscription" and session.id != keep:
            api.expire(session.id)
            expired += 1
    return expired


LIVE_SUBSCRIPTION_STATUSES = {"active", "trialing", "past_due", "unpaid", "incomplete"}


@translate_errors
def customer_live_subscription_exists(*, stripe_customer_id: str, customer_id: str) -> bool:
    """Whether this account already has a subscription at Stripe that is or may become
    paid (several accounts may share one Stripe customer: ours carry our id)."""
    found = client().v1.subscriptions.list(
        {"customer": stripe_customer_id, "status": "all", "limit": 100}
    )
    return any(
        subscription.status in LIVE_SUBSCRIPTION_STATUSES
        and (subscription.metadata or {}).get("customer_id", customer_id) == customer_id
        for subscription in found.auto_paging_iter()
    )


@translate_errors
def checkout_session_subscription(*, session_id: str) -> tuple[str, str | None]:
    """(customer, subscription) of a Checkout Session; the subscription once it exists."""
    session = client().v1.checkout.sessions.retrieve(session_id)
    return session.customer, session.subscription


@translate_errors
def subscription_ids_all() -> set[str]:
    """The ids of every subscription of the Stripe account, ended ones included."""
    listed = client().v1.subscriptions.list({"status": "all", "limit": 100})
    return {subscription.id for subscription in listed.auto_paging_iter()}


@translate_errors
def subscription_retrieve(*, subscription_id: str) -> dict:
    return as_json(client().v1.subscriptions.retrieve(subscription_id))


@translate_errors
def subscription_change_preview(
    *,
    stripe_customer_id: str,
    subscription_id: str,
    item_id: str,
    price_id: str,
    proration_date: int,
) -> dict:
    """The invoice Stripe would issue at once for switching the item to another price."""
    return as_json(
        client().v1.invoices.create_preview(
            {
                "customer": stripe_customer_id,
                "subscription": subscription_id,
                "subscription_details": {
                    "items": [{"id": item_id, "price": price_id}],
                    "proration_behavior": "always_invoice",
                    "proration_date": proration_date,
                },
            }
        )
    )  # fmt: skip


@translate_errors
def subscription_change_price(
    *, subscription_id: str, item_id: str, price_id: str, proration_date: int
) -> dict:
    """Switch now, invoicing the proration at once, at the moment the preview priced."""
    return as_json(
        client().v1.subscriptions.update(
            subscription_id,
            {
                "items": [{"id": item_id, "price": price_id}],
                "proration_behavior": "always_invoice",
                "proration_date": proration_date,
            },
            {"idempotency_key": idempotency_key(
                "change-plan", subscription_id, price_id, proration_date
            )},
        )
    )  # fmt: skip


@translate_errors
def subscription_cancel_at_period_end_set(
    *, subscription_id: str, cancel: bool, request_key: str
) -> dict:
    return as_json(
        client().v1.subscriptions.update(
            subscription_id,
            {"cancel_at_period_end": cancel},
            {"idempotency_key": idempotency_key("cancel-at-end", subscription_id, request_key)},
        )
    )


@translate_errors
def test_clock_now(*, test_clock_id: str) -> int:
    """A test clock's frozen time (tests and the demo only; live mode has no clocks)."""
    return client().v1.test_helpers.test_clocks.retrieve(test_clock_id).frozen_time
