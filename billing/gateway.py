"""The one door to Stripe: nothing else in the portal imports `stripe` (ruff's TID251 holds
that line). It pins the API version, honours STRIPE_API_BASE (the local emulator), sets
timeouts, sends a deterministic idempotency key with every write that creates something or
changes a customer's billing (updates that are harmless to repeat, such as deactivating a
price, go without), and turns Stripe's errors into ours with a message fit for a customer.
"""

import contextlib
import contextvars
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import stripe
from django.conf import settings
from django.db import connections

from .declines import AUTHENTICATION_CODES
from .errors import (
    BillingError,
    BillingNotEnabled,
    GatewayUnavailable,
    PaymentDeclined,
    WebhookSignatureInvalid,
)
from .webhook_events import WEBHOOK_EVENTS

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


CONCURRENT_CHANGE_MESSAGE = (
    "Another change to your billing was made at the same moment. Please reload the page "
    "and try again."
)


# The parameters of the billing details form: Stripe's message about one (an invalid VAT
# number) is fit to show next to its field. Any other refusal gets our own wording.
CUSTOMER_INPUT_PARAMS = frozenset(
    {"name", "email", "phone", "value", "type", "tax_id_data"}
    | {f"address[{field}]" for field in ("line1", "line2", "city", "postal_code", "state")}
    | {"address[country]"}
)


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
        except stripe.IdempotencyError as error:
            # The same key with other parameters: a concurrent request of another kind.
            logger.warning("Idempotency conflict: %s", error)
            raise BillingError(CONCURRENT_CHANGE_MESSAGE, code="idempotency_error") from error
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            logger.warning("Stripe unavailable: %s", error)
            raise GatewayUnavailable() from error
        except stripe.InvalidRequestError as error:
            logger.warning("Stripe refused a request: %s", error)
            # Stripe's wording is shown only where it is about what the customer typed.
            shown = error.user_message if error.param in CUSTOMER_INPUT_PARAMS else None
            raise BillingError(shown, code=error.code, param=error.param) from error
        except (stripe.AuthenticationError, stripe.PermissionError) as error:
            logger.error("Stripe refused the portal's key: %s", error)
            raise BillingError("Billing is misconfigured; the operator has been told.") from error
        except stripe.StripeError as error:
            if error.http_status is None or error.http_status >= 500:
                logger.warning("Stripe error %s: %s", error.http_status, error)
                raise GatewayUnavailable() from error
            logger.warning("Stripe error %s: %s", error.http_status, error)
            raise BillingError(code=error.code) from error

    return wrapper


def as_json(stripe_object: stripe.StripeObject) -> dict:
    """Plain JSON, as the API sent it (stripe-python turns `*_decimal` strings into Decimal),
    for dj-stripe's mirror and for callers that should not hold stripe-python objects."""
    return json.loads(json.dumps(stripe_object.to_dict(), default=str))


def as_stripe_object(data: dict) -> stripe.StripeObject:
    """Plain JSON back as stripe-python's objects, for dj-stripe's sync of the objects
    that page through their lists (a subscription's items, an invoice's lines)."""
    return stripe.convert_to_stripe_object(
        data, api_key=settings.STRIPE_SECRET_KEY, stripe_version=settings.STRIPE_API_VERSION
    )


def _missing(error: stripe.InvalidRequestError) -> bool:
    return error.code == "resource_missing"


def idempotency_key(*parts: object) -> str:
    """The same operation on the same objects always sends the same key, so a retry (by a
    task, or by a customer clicking again) can never do the thing twice."""
    return "portal:" + ":".join(str(part) for part in parts)


class StripeCallInTransaction(RuntimeError):
    """A Stripe request was about to go out while a database transaction is open: one slow
    answer would then hold every other writer (on SQLite, the whole database)."""


class MirrorNeedsObject(Exception):
    """dj-stripe made a request while mirroring: `mirror` makes it outside any transaction
    (`mirror_request_answer`) and mirrors again, with the answer served from memory."""

    def __init__(self, method: str, url: str, headers: Any) -> None:
        self.method, self.url, self.headers = method, url, dict(headers or {})
        super().__init__(f"{method.upper()} {url}")

    @property
    def key(self) -> tuple[str, str]:
        return self.method.lower(), self.url


# Inside `request_ids_collected`: the Request-Id of each answer Stripe gave, in order.
_request_ids: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "stripe_request_ids", default=None
)


@contextlib.contextmanager
def request_ids_collected() -> Iterator[list[str]]:
    """The Request-Id of every Stripe answer within the block (errors included), as Stripe
    logs them: a support action's audit entry names the requests it made."""
    collected: list[str] = []
    token = _request_ids.set(collected)
    try:
        yield collected
    finally:
        _request_ids.reset(token)


def _request_id_note(headers: Any) -> None:
    collected = _request_ids.get()
    if collected is None or not headers:
        return
    for name, value in dict(headers).items():
        if name.lower() == "request-id" and value:
            collected.append(value)


# While mirroring: the answers fetched so far, by (method, url), and the requests stopped
# for want of one; None otherwise.
_mirror_answers: contextvars.ContextVar[tuple[dict, list] | None] = contextvars.ContextVar(
    "mirror_answers", default=None
)


def _transaction_open() -> bool:
    """Whether this thread holds a database transaction of its own. The atomic blocks a
    test case wraps each test in (marked `_from_testcase` by Django) do not count: tests
    that need the real thing run with transaction=True."""
    return any(
        not getattr(block, "_from_testcase", False)
        for connection in connections.all(initialized_only=True)
        for block in connection.atomic_blocks
    )


class GuardedHTTPClient(stripe.HTTPClient):
    """The one HTTP client of every Stripe request, ours and dj-stripe's: it carries the
    timeouts and retries, and refuses (in tests) or reports a request made while a
    database transaction is open."""

    name = "portal-guarded"

    def __init__(self, transport: stripe.HTTPClient) -> None:
        super().__init__()
        self.transport = transport

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        mirror = _mirror_answers.get()
        if mirror is not None:
            answers, stopped = mirror
            if (method.lower(), url) in answers:
                return answers[(method.lower(), url)]
            needed = MirrorNeedsObject(method, url, headers)
            stopped.append(needed)  # noted: dj-stripe swallows some of its requests' errors
            raise needed
        self._check(method, url)
        answer = self.transport.request(method, url, headers, post_data)
        _request_id_note(answer[2])
        return answer

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        self._check(method, url)
        return self.transport.request_stream(method, url, headers, post_data)

    def close(self) -> None:
        self.transport.close()

    def _check(self, method: str, url: str) -> None:
        if _transaction_open():
            if settings.STRIPE_REFUSE_CALLS_IN_TRANSACTION:
                raise StripeCallInTransaction(f"{method.upper()} {url}")
            logger.error("Stripe called inside a database transaction: %s %s", method, url)


_http: GuardedHTTPClient | None = None


def http_client() -> GuardedHTTPClient:
    if _http is None:
        stripe_configure()
    return _http  # type: ignore[return-value] - set by stripe_configure


def stripe_configure(*, transport: stripe.HTTPClient | None = None) -> None:
    """Install the one HTTP client for stripe-python's global API (dj-stripe's) and for
    ours, with explicit connect and read timeouts and bounded retries, and point both at
    STRIPE_API_BASE (the local emulator). `transport` replaces the network (tests plug the
    in-process emulator in here)."""
    global _http
    _http = GuardedHTTPClient(
        transport
        or stripe.RequestsClient(
            timeout=(settings.STRIPE_CONNECT_TIMEOUT, settings.STRIPE_READ_TIMEOUT)
        )
    )
    stripe.default_http_client = _http
    stripe.max_network_retries = settings.STRIPE_MAX_NETWORK_RETRIES
    if settings.STRIPE_API_BASE:
        stripe.api_base = settings.STRIPE_API_BASE
    _client.cache_clear()


@contextlib.contextmanager
def mirroring(answers: dict) -> Iterator[list[MirrorNeedsObject]]:
    """While dj-stripe turns Stripe data into mirror rows, a request it makes is answered
    from `answers`, or handed back as MirrorNeedsObject (it would go out inside its own
    transaction). Yields the list of requests stopped so: dj-stripe catches the error of
    some of its requests and goes on without their answer (a product's features, an
    invoice's line items), so a mirroring that ends without an error may still need them."""
    stopped: list[MirrorNeedsObject] = []
    token = _mirror_answers.set((answers, stopped))
    try:
        yield stopped
    finally:
        _mirror_answers.reset(token)


class MirrorStopsUnlogged(logging.Filter):
    """Drops dj-stripe's warning about a request of its own that `mirroring` stopped: the
    request is then made outside the transaction and the mirroring run again, so nothing
    failed (installed on dj-stripe's logger by the billing app)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], MirrorNeedsObject))


def mirror_request_answer(needed: MirrorNeedsObject) -> tuple[str, int, Any]:
    """Make, outside any transaction, the request dj-stripe wanted; its raw answer, errors
    included (dj-stripe handles a missing object itself)."""
    if needed.method.lower() != "get":
        raise BillingError("The mirror may only read from Stripe.")
    try:
        return http_client().request_with_retries(
            needed.method,
            needed.url,
            needed.headers,
            None,
            max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        )
    except stripe.APIConnectionError as error:
        raise GatewayUnavailable() from error


@functools.cache
def _client(api_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        http_client=http_client(),
    )


def client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise BillingNotEnabled()
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


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
def customer_create(*, customer_id: str, email: str, name: str = "", request_key: str = "") -> str:
    """A Stripe customer for our account. `request_key` names a later creation (a shared
    profile detached) apart from the first, which is keyed by our id alone."""
    params: dict[str, Any] = {"email": email, "metadata": {"customer_id": customer_id}}
    if name:
        params["name"] = name
    if settings.STRIPE_TEST_CLOCKS and not settings.STRIPE_LIVE_MODE:
        # Test mode only: a clock per customer, so its billing cycles can be run at will.
        # It starts at the hour, so a retry within it sends the same request and key.
        hour = int(time.time()) // 3600 * 3600
        clock = client().v1.test_helpers.test_clocks.create(
            {"frozen_time": hour, "name": customer_id},
            {"idempotency_key": idempotency_key("test-clock", customer_id, hour)},
        )
        params["test_clock"] = clock.id
    parts = [request_key] if request_key else []
    created = client().v1.customers.create(
        params, {"idempotency_key": idempotency_key("customer-create", customer_id, *parts)}
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


# --- Webhooks ---------------------------------------------------------------------------------


def webhook_payload_verify(*, body: bytes, signature: str, secret: str, tolerance: int) -> dict:
    """The event a webhook carries, once its Stripe-Signature verifies against the
    endpoint's secret within `tolerance` seconds. No request to Stripe."""
    try:
        text = body.decode()
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
        payload = json.loads(text)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as error:
        raise WebhookSignatureInvalid() from error
    if not isinstance(payload, dict) or payload.get("object") != "event" or "id" not in payload:
        raise WebhookSignatureInvalid()
    return payload


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
def checkout_sessions_expire(*, session_ids: list[str]) -> int:
    """Expire these Checkout sessions, so an older tab cannot pay. A session completed or
    expired meanwhile (by a concurrent request) is left as it is."""
    api = client().v1.checkout.sessions
    expired = 0
    for session_id in session_ids:
        try:
            api.expire(session_id)
        except stripe.InvalidRequestError as error:
            logger.info("Session %s was not open any more: %s", session_id, error)
            continue
        expired += 1
    return expired


@translate_errors
def checkout_session_is_open(*, session_id: str) -> bool:
    try:
        return client().v1.checkout.sessions.retrieve(session_id).status == "open"
    except stripe.InvalidRequestError as error:
        if _missing(error):
            return False
        raise


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
    trial_end_now: bool = False,
) -> dict:
    """The invoice Stripe would issue at once for switching the item to another price
    (and, with `trial_end_now`, ending the trial: the new price's first period)."""
    details: dict[str, Any] = {
        "items": [{"id": item_id, "price": price_id}],
        "proration_behavior": "always_invoice",
        "proration_date": proration_date,
    }
    if trial_end_now:
        details["trial_end"] = "now"
    return as_json(
        client().v1.invoices.create_preview(
            {
                "customer": stripe_customer_id,
                "subscription": subscription_id,
                "subscription_details": details,
            }
        )
    )  # fmt: skip


@translate_errors
def subscription_change_price(
    *,
    subscription_id: str,
    item_id: str,
    price_id: str,
    proration_date: int,
    trial_end_now: bool = False,
) -> dict:
    """Switch now, invoicing the proration at once, at the moment the preview priced; with
    `trial_end_now`, the trial ends too and the new price's first period is charged.

    As a pending update (`pending_if_incomplete`): the switch is made only once its invoice
    is paid. A decline raises PaymentDeclined and the subscription stays as it was (with the
    update pending on an open invoice: `plan_change_abandon` voids it); a card that needs
    authentication answers the subscription with `pending_update` set."""
    params: dict[str, Any] = {
        "items": [{"id": item_id, "price": price_id}],
        "proration_behavior": "always_invoice",
        "proration_date": proration_date,
        "payment_behavior": "pending_if_incomplete",
    }
    if trial_end_now:
        params["trial_end"] = "now"
    return as_json(
        client().v1.subscriptions.update(
            subscription_id,
            params,
            {"idempotency_key": idempotency_key(
                "change-plan", subscription_id, price_id, proration_date
            )},
        )
    )  # fmt: skip


@translate_errors
def subscription_default_payment_method_clear(
    *, subscription_id: str, payment_method_id: str
) -> dict:
    """Take the subscription's own card away, so Stripe charges the customer's default
    (our primary) instead: Stripe tries the invoice's, then the subscription's, then the
    customer's default payment method. Keyed by the card it removes."""
    return as_json(
        client().v1.subscriptions.update(
            subscription_id,
            {"default_payment_method": ""},
            {"idempotency_key": idempotency_key(
                "subscription-pm-clear", subscription_id, payment_method_id
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


def _coupon_refusal(error: stripe.InvalidRequestError, coupon_id: str) -> BillingError:
    """Stripe's refusal of a coupon, in words for the staff member who typed its id."""
    if error.code == "resource_missing":
        message = f"Stripe has no coupon with the id {coupon_id!r}."
    elif error.code == "coupon_expired":
        message = f"Coupon {coupon_id} can no longer be redeemed (expired or used up)."
    else:
        message = f"Stripe refused coupon {coupon_id}: {error.user_message}"
    return BillingError(message, code=error.code, param="coupon")


@translate_errors
def coupon_retrieve(*, coupon_id: str) -> dict:
    """A coupon's terms, with the products it is limited to (`applies_to`)."""
    try:
        return as_json(client().v1.coupons.retrieve(coupon_id, {"expand": ["applies_to"]}))
    except stripe.InvalidRequestError as error:
        raise _coupon_refusal(error, coupon_id) from error


@translate_errors
def subscription_coupon_apply(*, subscription_id: str, coupon_id: str, request_key: str) -> dict:
    """Redeem a coupon on the subscription; it replaces the discounts it had. Answers the
    subscription with its discounts expanded."""
    try:
        return as_json(
            client().v1.subscriptions.update(
                subscription_id,
                {"discounts": [{"coupon": coupon_id}], "expand": ["discounts"]},
                {"idempotency_key": idempotency_key(
                    "coupon-apply", subscription_id, coupon_id, request_key
                )},
            )
        )  # fmt: skip
    except stripe.InvalidRequestError as error:
        raise _coupon_refusal(error, coupon_id) from error


@translate_errors
def customer_test_clock(*, stripe_customer_id: str) -> str | None:
    return client().v1.customers.retrieve(stripe_customer_id).test_clock


@translate_errors
def test_clock_advance(*, test_clock_id: str, frozen_time: int) -> dict:
    """Start moving a clock on; it answers `advancing` until Stripe has done the work.
    No key: a second advance to the same time is refused, never done twice."""
    return as_json(
        client().v1.test_helpers.test_clocks.advance(test_clock_id, {"frozen_time": frozen_time})
    )


@translate_errors
def test_clock_retrieve(*, test_clock_id: str) -> dict:
    return as_json(client().v1.test_helpers.test_clocks.retrieve(test_clock_id))


@translate_errors
def subscription_discounts_retrieve(*, subscription_id: str) -> dict:
    """The subscription with its discounts expanded (their coupon and dates)."""
    return as_json(client().v1.subscriptions.retrieve(subscription_id, {"expand": ["discounts"]}))


def stripe_now(*, test_clock_id: str | None) -> int:
    """Stripe's time for an object: its test clock's, or the wall clock's."""
    return test_clock_now(test_clock_id=test_clock_id) if test_clock_id else int(time.time())


@translate_errors
def test_clock_now(*, test_clock_id: str) -> int:
    """A test clock's frozen time (tests and the demo only; live mode has no clocks)."""
    return client().v1.test_helpers.test_clocks.retrieve(test_clock_id).frozen_time


# --- Invoice items and renewal drafts (invoice_sync) ------------------------------------------


@translate_errors
def invoice_item_create(
    *,
    stripe_customer_id: str,
    amount: int,
    currency: str,
    description: str,
    period: tuple[int, int],
    metadata: dict[str, str],
    subscription_id: str | None = None,
    invoice_id: str | None = None,
    key: str,
) -> dict:
    """A pending item of the subscription's next invoice, or an item on a draft."""
    params: dict[str, Any] = {
        "customer": stripe_customer_id,
        "amount": amount,
        "currency": currency,
        "description": description,
        "period": {"start": period[0], "end": period[1]},
        "metadata": metadata,
    }
    if invoice_id:
        params["invoice"] = invoice_id
    elif subscription_id:
        params["subscription"] = subscription_id
    created = client().v1.invoice_items.create(params, {"idempotency_key": key})
    return as_json(created)


@translate_errors
def invoice_item_update(*, item_id: str, amount: int, description: str, key: str) -> dict:
    updated = client().v1.invoice_items.update(
        item_id, {"amount": amount, "description": description}, {"idempotency_key": key}
    )
    return as_json(updated)


@translate_errors
def invoice_item_delete(*, item_id: str) -> None:
    """Delete an item; one already gone is as good (a retried delete)."""
    try:
        client().v1.invoice_items.delete(item_id)
    except stripe.InvalidRequestError as error:
        if not _missing(error):
            raise


@translate_errors
def invoice_items_list(*, stripe_customer_id: str, invoice_id: str | None = None) -> list[dict]:
    """The customer's pending items, or the items on one invoice."""
    params: dict[str, Any] = {"customer": stripe_customer_id, "limit": 100}
    if invoice_id:
        params["invoice"] = invoice_id
    else:
        params["pending"] = True
    listed = client().v1.invoice_items.list(params)
    return [as_json(item) for item in listed.auto_paging_iter()]


@translate_errors
def invoice_hold(*, invoice_id: str) -> dict:
    """Keep a draft a draft (`auto_advance=false`) until it is finalized explicitly.
    No key: holding twice is harmless."""
    return as_json(client().v1.invoices.update(invoice_id, {"auto_advance": False}))


@translate_errors
def invoice_finalize(*, invoice_id: str) -> dict:
    """Finalize a held draft and let Stripe collect it at once."""
    return as_json(
        client().v1.invoices.finalize_invoice(
            invoice_id,
            {"auto_advance": True},
            {"idempotency_key": idempotency_key("invoice-finalize", invoice_id)},
        )
    )


# --- Support actions on invoices ---------------------------------------------------------------


@translate_errors
def invoice_pay(*, invoice_id: str, payment_method_id: str, request_key: str) -> dict:
    """Try to collect an open invoice now with this card (support retrying a payment)."""
    return as_json(
        client().v1.invoices.pay(
            invoice_id,
            {"payment_method": payment_method_id},
            {"idempotency_key": idempotency_key(
                "invoice-pay", invoice_id, payment_method_id, request_key
            )},
        )
    )  # fmt: skip


@translate_errors
def invoice_void(*, invoice_id: str) -> dict:
    """Void an open invoice: nothing is owed on it any more. Voiding twice is refused by
    Stripe, never done twice."""
    return as_json(
        client().v1.invoices.void_invoice(
            invoice_id, {}, {"idempotency_key": idempotency_key("invoice-void", invoice_id)}
        )
    )


@translate_errors
def invoice_mark_uncollectible(*, invoice_id: str) -> dict:
    """Stop collecting an open invoice (it stays owed, unlike a void one)."""
    return as_json(
        client().v1.invoices.mark_uncollectible(
            invoice_id,
            {},
            {"idempotency_key": idempotency_key("invoice-uncollectible", invoice_id)},
        )
    )


@translate_errors
def customer_credit_add(
    *, stripe_customer_id: str, amount: int, currency: str, description: str, request_key: str
) -> dict:
    """A credit on the Stripe customer's balance (a negative balance transaction): Stripe
    takes it off the next invoices it finalizes."""
    return as_json(
        client().v1.customers.balance_transactions.create(
            stripe_customer_id,
            {"amount": -amount, "currency": currency, "description": description},
            {"idempotency_key": idempotency_key("credit", stripe_customer_id, request_key)},
        )
    )


@translate_errors
def customer_personal_data_clear(*, stripe_customer_id: str, request_key: str) -> None:
    """Erase the person from a Stripe customer (GDPR): name, email, phone, address,
    shipping, description. Invoices and payments stay, as the law requires."""
    client().v1.customers.update(
        stripe_customer_id,
        {"name": "", "email": "", "phone": "", "description": "", "address": "",
         "shipping": "", "metadata": {"erased": "true"}},
        {"idempotency_key": idempotency_key("customer-erase", stripe_customer_id, request_key)},
    )  # fmt: skip


@dataclass(frozen=True)
class CustomerDebts:
    """What a Stripe customer still owes or will still be billed, for deciding whether it
    may be deleted (deleting it cancels its subscriptions at once, as Stripe documents)."""

    deleted: bool = False
    balance: int = 0  # positive: owed by the customer
    unpaid_invoices: tuple[str, ...] = ()  # open, uncollectible or draft, with an amount left
    billing_subscriptions: tuple[str, ...] = ()  # will still renew and bill
    pending_items: int = 0  # pending invoice items' sum: the next invoice would take them

    @property
    def nothing_owed(self) -> bool:
        return self.deleted or (
            self.balance <= 0
            and not self.unpaid_invoices
            and not self.billing_subscriptions
            and self.pending_items <= 0
        )


@translate_errors
def customer_debts(*, stripe_customer_id: str) -> CustomerDebts:
    api = client().v1
    customer = api.customers.retrieve(stripe_customer_id)
    if getattr(customer, "deleted", False):
        return CustomerDebts(deleted=True)
    unpaid = []
    for status in ("draft", "open", "uncollectible"):
        listed = api.invoices.list({"customer": stripe_customer_id, "status": status, "limit": 100})
        for invoice in listed.auto_paging_iter():
            left = invoice.amount_due if status == "draft" else invoice.amount_remaining
            if left > 0:
                unpaid.append(invoice.id)
    subscriptions = api.subscriptions.list(
        {"customer": stripe_customer_id, "status": "all", "limit": 100}
    )
    billing = [
        subscription.id
        for subscription in subscriptions.auto_paging_iter()
        if subscription.status not in ("canceled", "incomplete_expired")
        and not subscription.cancel_at_period_end
    ]
    items = api.invoice_items.list({"customer": stripe_customer_id, "pending": True, "limit": 100})
    return CustomerDebts(
        balance=customer.balance or 0,
        unpaid_invoices=tuple(unpaid),
        billing_subscriptions=tuple(billing),
        pending_items=sum(item.amount for item in items.auto_paging_iter()),
    )


@translate_errors
def customer_delete(*, stripe_customer_id: str) -> None:
    """Delete the Stripe customer (GDPR, when nothing is owed): Stripe cancels its
    subscriptions at once and answers the deleted stub from then on. Deleting it again
    (a retried erasure) is a no-op."""
    try:
        client().v1.customers.delete(stripe_customer_id)
    except stripe.InvalidRequestError as error:
        if not _missing(error):
            raise
        if not getattr(client().v1.customers.retrieve(stripe_customer_id), "deleted", False):
            raise


# --- Collecting a failed invoice (recovery) --------------------------------------------------


@dataclass(frozen=True)
class PayResult:
    """What one `pay` with one card came to. `outcome`: paid, declined, requires_action,
    card_unusable (detached, or not this customer's), not_payable (the invoice is paid,
    void or otherwise not open)."""

    outcome: str
    decline_code: str = ""
    invoice_status: str = ""


@translate_errors
def invoice_pay_with(*, invoice_id: str, payment_method_id: str, key: str) -> PayResult:
    """Pay an open invoice with one card, under the caller's deterministic key: a retry
    after a lost answer replays Stripe's saved answer instead of charging again."""
    try:
        invoice = client().v1.invoices.pay(
            invoice_id, {"payment_method": payment_method_id}, {"idempotency_key": key}
        )
    except stripe.CardError as error:
        code = getattr(error.error, "decline_code", None) or error.code or ""
        if code in AUTHENTICATION_CODES:
            return PayResult("requires_action", decline_code=code)
        return PayResult("declined", decline_code=code)
    except stripe.InvalidRequestError as error:
        if error.code == "invoice_payment_intent_requires_action":
            return PayResult("requires_action", decline_code=error.code)
        if error.param == "payment_method":
            logger.info("Card %s cannot pay %s: %s", payment_method_id, invoice_id, error)
            return PayResult("card_unusable", decline_code=error.code or "")
        current = client().v1.invoices.retrieve(invoice_id)
        if current.status not in ("open", "uncollectible"):
            return PayResult("not_payable", invoice_status=current.status)
        raise
    if invoice.status == "paid":
        return PayResult("paid", invoice_status="paid")
    return PayResult("declined", invoice_status=invoice.status)


@dataclass(frozen=True)
class LatestPayment:
    """The newest payment attempt of an invoice: its card, and why it failed."""

    payment_intent: str
    status: str
    payment_method: str
    decline_code: str
    created: int


def _id_of(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.get("id", "")


@translate_errors
def invoice_latest_payment(*, invoice_id: str) -> LatestPayment | None:
    """Stripe lists an invoice's payments newest first; the card is the intent's, or (a
    failed intent lets go of its card) the failed charge's."""
    api = client().v1
    listed = api.invoice_payments.list({"invoice": invoice_id, "limit": 1}).data
    if not listed:
        return None
    intent_id = _id_of(listed[0].payment.get("payment_intent"))
    if not intent_id:
        return None
    intent = as_json(api.payment_intents.retrieve(intent_id))
    error = intent.get("last_payment_error") or {}
    card = _id_of(intent.get("payment_method")) or _id_of(error.get("payment_method"))
    if not card and (charge := _id_of(intent.get("latest_charge"))):
        card = _id_of(api.charges.retrieve(charge).get("payment_method"))
    decline = error.get("decline_code") or error.get("code") or ""
    if intent["status"] == "requires_action":
        decline = "authentication_required"
    return LatestPayment(
        payment_intent=intent_id,
        status=intent["status"],
        payment_method=card,
        decline_code=decline,
        created=intent.get("created") or 0,
    )


# --- Events (the reconcile) and objects by type ------------------------------------------------

# The API path of each object type the portal refreshes from an event.
OBJECT_PATHS = {
    "charge": "charges",
    "checkout.session": "checkout/sessions",
    "customer": "customers",
    "invoice": "invoices",
    "invoiceitem": "invoiceitems",
    "payment_intent": "payment_intents",
    "payment_method": "payment_methods",
    "price": "prices",
    "product": "products",
    "setup_intent": "setup_intents",
    "subscription": "subscriptions",
    "tax_id": "tax_ids",
}


@translate_errors
def object_retrieve(*, object_type: str, object_id: str) -> dict | None:
    """An object as Stripe has it now; None when Stripe no longer has it."""
    path = f"/v1/{OBJECT_PATHS[object_type]}/{object_id}"
    if object_type == "invoice":
        # dj-stripe's invoice mirror syncs each of its discounts: it needs them whole.
        path += "?expand[]=discounts"
    try:
        response = client().raw_request("get", path)
    except stripe.InvalidRequestError as error:
        if _missing(error):
            return None
        raise
    return json.loads(response.body)


@translate_errors
def events_since(*, created_gte: int) -> list[dict]:
    """Every event Stripe has created since `created_gte` (it keeps 30 days), oldest first."""
    listed = client().v1.events.list({"created": {"gte": created_gte}, "limit": 100})
    events = [as_json(event) for event in listed.auto_paging_iter()]
    events.reverse()  # Stripe lists newest first; within one second, keep its order
    events.sort(key=lambda event: event["created"])
    return events
