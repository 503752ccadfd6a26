"""check-access's lean path. The business's services call it on their own hot paths, so a
well-formed read-only question from a valid service key is answered here, right after
Django's security middleware: no session, CSRF, messages, authentication or axes work, no
URL resolving, no DRF negotiation, no serializer, the key remembered per process and the
decision from one query. Anything else (a consume, a body the fast checks do not accept, a
missing or unknown key) goes on down the normal stack to `views.CheckAccessView`, which
answers it exactly as before, errors included. Both write the body with `decision_body`,
so the answers are the same; the tests ask both paths the same questions.
"""

import json
import re

from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpResponse, JsonResponse

from accounts.models import CUSTOMER_ID_PREFIX
from licensing.entitlements import check_access

from .authentication import _bearer, service_key_lookup
from .errors import STATUS_CODES, error_body, logger

PATH = "/api/v1/check-access"
# What CheckAccessRequest accepts, checked the quick way; anything else takes the slow path.
CUSTOMER_ID_LENGTH = 37
FEATURE = re.compile(r"[-a-zA-Z0-9_]{1,64}")
FIELDS = frozenset({"customer_id", "feature", "requested_usage", "consume"})


def _reject_constant(name: str):
    raise ValueError(name)  # NaN and Infinity are not JSON; the slow path says so


def _question(body: bytes) -> tuple[str, str, int] | None:
    """(customer id, feature, requested usage) of a plain check, or None for the slow path."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not data.keys() <= FIELDS or data.get("consume", False):
        return None
    customer_id, feature = data.get("customer_id"), data.get("feature")
    usage = data.get("requested_usage", 0)
    if not (
        isinstance(customer_id, str)
        and len(customer_id) == CUSTOMER_ID_LENGTH
        and customer_id.startswith(CUSTOMER_ID_PREFIX)
        and customer_id.strip() == customer_id
        and isinstance(feature, str)
        and FEATURE.fullmatch(feature)
        and type(usage) is int
        and usage >= 0
    ):
        return None
    return customer_id, feature, usage


def _decide(**question):
    """The decision, trusting the connection the first time: a connection that went stale
    while idle fails the query, which is then asked once more on a new one. This replaces
    CONN_HEALTH_CHECKS' `SELECT 1` before every request's first query."""
    connection.health_check_done = True
    try:
        return check_access(**question)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        connection.close()
        return check_access(**question)


def answer(request) -> HttpResponse | None:
    """The lean answer to a plain check-access, or None when the normal stack must answer."""
    from .views import decision_body

    if request.content_type != "application/json":
        return None
    token = _bearer(request)
    if token is None:
        return None
    try:
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware would check it
        question = _question(request.body)
    except (DisallowedHost, RequestDataTooBig, OSError):
        return None  # the slow path answers these, as it always has
    if question is None:
        return None
    customer_id, feature, usage = question
    if service_key_lookup(token) is None:
        return None
    try:
        decision = _decide(customer_id=customer_id, feature=feature, requested_usage=usage)
    except Exception:  # noqa: BLE001 - answered as the DRF view's handler answers it
        # As the DRF view's exception handler answers: logged whole, the envelope, a 500.
        logger.exception("Unhandled error in the API")
        code, message = STATUS_CODES[500]
        return JsonResponse(error_body(code, message), status=500)
    body = json.dumps(decision_body(decision), ensure_ascii=False, separators=(",", ":"))
    response = HttpResponse(
        body, content_type="application/json", status=200 if decision.has_access else 403
    )
    # As DRF's view answers; X-Frame-Options as the clickjacking middleware would add.
    response["Vary"] = "Accept"
    response["Allow"] = "POST, OPTIONS"
    response["X-Frame-Options"] = "DENY"
    # A refusal is an answer, not an error: no `django.request` "Forbidden" warning.
    response._has_been_logged = True
    return response


def check_access_fast_path(get_response):
    """Middleware, right after SecurityMiddleware: the lean path for plain checks."""

    def middleware(request):
        if request.method == "POST" and request.path_info == PATH:
            response = answer(request)
            if response is not None:
                return response
        return get_response(request)

    return middleware
