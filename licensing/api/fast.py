"""check-access's lean path. The business's services call it on their own hot paths, so a
plain question from a valid service key is answered in front of Django's request handler,
by `CheckAccessFrontDoor` wrapped around the WSGI application: no request signals, no
middleware, no session, CSRF, messages, authentication or axes work, no URL resolving, no
DRF negotiation, no serializer; the key remembered per process and the decision from one
prepared query.

Django still decides what it decides for every request: whether the Host is allowed and
what SecurityMiddleware does (its https redirect, its headers). Both depend only on a few
request headers, so each combination seen is asked of Django once and remembered.

Anything else (a consume, a body the quick checks do not accept, a missing or unknown key,
a Host Django refuses, a request SecurityMiddleware redirects) goes on to Django and
`views.CheckAccessView`, which answers it exactly as before, errors included. Both write
the body with `decision_body`, so the answers are the same; the tests ask both paths the
same questions.
"""

import io
import json
import re
import threading

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware

from accounts.models import CUSTOMER_ID_PREFIX
from licensing.entitlements import check_access

from .authentication import service_key_known
from .errors import STATUS_CODES, error_body, logger

PATH = "/api/v1/check-access"
# What CheckAccessRequest accepts, checked the quick way; anything else takes the slow path.
CUSTOMER_ID_LENGTH = 37
FEATURE = re.compile(r"[-a-zA-Z0-9_]{1,64}")
FIELDS = frozenset({"customer_id", "feature", "requested_usage", "consume"})
# The request headers Django's Host check and SecurityMiddleware read.
ROUTING_KEYS = (
    "HTTP_HOST", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "SERVER_NAME",
    "SERVER_PORT", "wsgi.url_scheme",
)  # fmt: skip
# Hosts are the caller's to choose: at most this many combinations are remembered.
ROUTING_CACHE_SIZE = 256
# The headers of every answer, as DRF's view and the clickjacking middleware write them.
ANSWER_HEADERS = (
    ("Content-Type", "application/json"),
    ("Vary", "Accept"),
    ("Allow", "POST, OPTIONS"),
    ("X-Frame-Options", "DENY"),
)
# As json.dumps(ensure_ascii=False, separators=(",", ":")) writes, made once.
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
STATUS_LINES = {200: "200 OK", 403: "403 Forbidden", 500: "500 Internal Server Error"}


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


def _decide(db, **question):
    """The decision, trusting the connection the first time: a connection that went stale
    while idle fails the query, which is then asked once more on a new one. This replaces
    CONN_HEALTH_CHECKS' `SELECT 1` before every request's first query."""
    db.health_check_done = True
    try:
        return check_access(**question)
    except (OperationalError, InterfaceError):
        if db.in_atomic_block:
            raise
        db.close()
        return check_access(**question)


def _connection_recycle(db) -> None:
    """What Django's request signals do after a request: close the connection if it is
    past CONN_MAX_AGE or broken. Not inside an atomic block, which only a test holds open
    around a request."""
    if not db.in_atomic_block:
        db.close_if_unusable_or_obsolete()


def _bearer(environ) -> str | None:
    """The key of `Authorization: Bearer <key>` written plainly; other forms take the slow
    path, which reads them as DRF does."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer "):
        return None
    token = header[7:]
    return token if token and token.strip() == token else None


def _body(environ) -> bytes | None:
    """The request body, if its length is stated and within Django's limit; the stream is
    replaced by the bytes read, so that the slow path can read them again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length < 0 or (limit is not None and length > limit):
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


class CheckAccessFrontDoor:
    """The WSGI application, with plain check-access questions answered in front of
    Django's handler. The database connection is looked after as Django's request signals
    would: past CONN_MAX_AGE, or broken, it is closed after the answer."""

    def __init__(self, application) -> None:
        self.application = application
        self.security = SecurityMiddleware(application)
        self._routing: dict[tuple, tuple[tuple[str, str], ...] | None] = {}
        self._routing_lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == PATH:
            answered = self.answer(environ)
            if answered is not None:
                status, headers, body = answered
                start_response(status, headers)
                return [body]
        return self.application(environ, start_response)

    def routing_headers(self, environ) -> tuple[tuple[str, str], ...] | None:
        """SecurityMiddleware's headers for this request, or None when Django must answer
        it (a Host it refuses, an https redirect). Asked of Django once per combination."""
        proxy = settings.SECURE_PROXY_SSL_HEADER
        key = (*(environ.get(name) for name in ROUTING_KEYS), proxy and environ.get(proxy[0]))
        try:
            return self._routing[key]
        except KeyError:
            pass
        request = WSGIRequest({**environ, "wsgi.input": io.BytesIO(), "CONTENT_LENGTH": "0"})
        try:
            request.get_host()
        except DisallowedHost:
            headers = None
        else:
            if self.security.process_request(request) is not None:
                headers = None
            else:
                probe = self.security.process_response(request, HttpResponse())
                headers = tuple(item for item in probe.items() if item[0] != "Content-Type")
        with self._routing_lock:
            if len(self._routing) >= ROUTING_CACHE_SIZE:
                self._routing.clear()
            self._routing[key] = headers
        return headers

    def answer(self, environ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """(status, headers, body) of the lean answer, or None when Django must answer."""
        from .views import decision_body

        if environ.get("CONTENT_TYPE") != "application/json":
            return None
        token = _bearer(environ)
        if token is None:
            return None
        security_headers = self.routing_headers(environ)
        if security_headers is None:
            return None
        body = _body(environ)
        question = body is not None and _question(body)
        if not question or not service_key_known(token):
            return None
        customer_id, feature, usage = question
        db = connections[DEFAULT_DB_ALIAS]  # once: each use of `connection` looks it up again
        try:
            decision = _decide(db, customer_id=customer_id, feature=feature, requested_usage=usage)
        except Exception:  # noqa: BLE001 - answered as the DRF view's handler answers it
            # As the DRF view's exception handler answers: logged whole, the envelope, a 500.
            logger.exception("Unhandled error in the API")
            status, content = 500, error_body(*STATUS_CODES[500])
        else:
            status, content = (200 if decision.has_access else 403), decision_body(decision)
        finally:
            _connection_recycle(db)
        # A refusal is an answer, not an error: nothing is logged for it.
        payload = ENCODER.encode(content).encode()
        headers = [*ANSWER_HEADERS, *security_headers, ("Content-Length", str(len(payload)))]
        return STATUS_LINES[status], headers, payload
