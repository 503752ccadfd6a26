"""The emulator: one object that answers every request, whatever carries it (HTTP or
in-process). State changes are serialised by one lock; webhooks go out afterwards."""

from __future__ import annotations

import base64
import json
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from . import hosted
from .context import API_VERSION, Context
from .errors import StripeError, invalid_request
from .faults import Faults, FaultSpecError
from .forms import decode
from .ids import new_id
from .params import validate
from .render import limit_check, render_with_expand
from .resources import ROUTES
from .resources.account import account_ensure
from .resources.clocks import clock_settle, clocks_due
from .resources.invoicing import invoice_created_acknowledged
from .resources.payment_methods import charge_behavior_set
from .routing import find
from .store import Obj, Store
from .webhooks import Dispatcher, Transport, http_transport

IDEMPOTENCY_KEY_MAX_LENGTH = 255
# Smart Retries' recommended default, "8 tries within 2 weeks": the failed renewal and 7
# retries, one every 2 days (Stripe picks the moments by machine learning; evenly spaced
# here, so tests can tell when each attempt happens).
SMART_RETRIES: tuple[float, ...] = (2.0,) * 7
FINAL_STATUSES = ("canceled", "unpaid", "past_due")
FINAL_INVOICE = ("open", "uncollectible")


def retry_settings(
    schedule: Any, final_status: str, final_invoice: str
) -> tuple[tuple[float, ...], str, str]:
    """Checked retry settings: days between attempts (each above 0, at most 60 days in
    all), and what becomes of the subscription and the invoice after the last one."""
    days = tuple(float(day) for day in schedule)
    if any(day <= 0 for day in days) or sum(days) > 60:
        raise ValueError("retry_schedule: days after the previous attempt, each above 0, 60 in all")
    if final_status not in FINAL_STATUSES:
        raise ValueError(f"retries_final_status must be one of {', '.join(FINAL_STATUSES)}")
    if final_invoice not in FINAL_INVOICE:
        raise ValueError(f"retries_final_invoice must be one of {', '.join(FINAL_INVOICE)}")
    return days, final_status, final_invoice


IDEMPOTENCY_KEY_LIFETIME = 24 * 3600


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Obj] = field(default_factory=list)
    hang: float | None = None  # answer nothing; the transport drops the connection
    # (its events, if any, were saved with the request and still go out)

    def json(self) -> Any:
        return json.loads(self.body)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status,
        json.dumps(payload, indent=2).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


class Emulator:
    """Stripe's API for the portal's needs, backed by a :class:`Store`."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        base_url: str = "http://127.0.0.1:12111",
        webhook_transport: Transport = http_transport,
        background_webhooks: bool = True,
        retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0),
        clock_advance_delay: float = 0.0,
        retry_schedule: tuple[float, ...] = SMART_RETRIES,
        retries_final_status: str = "canceled",
        retries_final_invoice: str = "open",
    ) -> None:
        self.base_url = base_url
        # Stripe's retries of failed renewal payments (the account's Dashboard settings).
        self.retry_schedule, self.retries_final_status, self.retries_final_invoice = retry_settings(
            retry_schedule, retries_final_status, retries_final_invoice
        )
        # How long a test clock stays ``advancing`` before the next request finishes it.
        self.clock_advance_delay = clock_advance_delay
        self.clock_due: dict[str, float] = {}  # clock id -> monotonic time its advance ends
        self.store = Store(data_dir)
        self.lock = threading.RLock()
        self.faults = Faults()
        self.webhooks = Dispatcher(
            webhook_transport,
            self.faults,
            background=background_webhooks,
            retry_delays=retry_delays,
        )
        self.webhooks.bind_endpoints(self._webhook_endpoints)
        self.webhooks.bind_acknowledgements(self._acknowledged)
        with self.lock:
            account_ensure(self.store)
            self.store.commit()

    def _webhook_endpoints(self) -> list[Obj]:
        with self.lock:
            return self.store.select("webhook_endpoint")

    def _acknowledged(self, event_id: str, endpoint_id: str) -> None:
        with self.lock:
            try:
                invoice_created_acknowledged(Context(self), event_id, endpoint_id)
            except Exception:  # noqa: BLE001 - an emulator bug must not stop the deliveries
                traceback.print_exc()
                self.store.rollback()
                return
            self.store.commit()

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> Response:
        """Answer one request; ``target`` is the path with its query string."""
        path, _, query = target.partition("?")
        method = method.upper()
        if path.startswith("/_emulator/"):
            return self._control(method, path, body)
        settled = self._clocks_settle()
        response = self._answer(method, path, query, headers, body)
        if settled:
            self.webhooks.expect()
            if response.hang is not None:  # no answer goes out: deliver them now
                self.webhooks.release(settled)
            else:
                if response.events:  # one release per response
                    self.webhooks.release([])
                response.events = settled + response.events
        return response

    def _clocks_settle(self) -> list[Obj]:
        """Finish the test clock advances that have come due, each its own commit, before
        the request that finds them; returns the events they emitted."""
        events: list[Obj] = []
        with self.lock:
            for clock in clocks_due(self.store, self.clock_due, time.monotonic()):
                self.clock_due.pop(clock["id"], None)
                ctx = Context(self)
                try:
                    clock_settle(ctx, clock)
                except Exception:  # noqa: BLE001 - an emulator bug must not wedge the clock
                    traceback.print_exc()
                    self._undo(ctx)
                    failed = self.store.get(clock["id"]) or clock
                    failed["status"], failed["status_details"] = "internal_failure", {}
                    self.store.touch(failed)
                self.store.commit()
                events += ctx.events
        return events

    def _answer(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Response:
        page_handler = _PAGES.get(path.split("/")[1])
        if page_handler is not None:
            with self.lock:
                ctx = Context(self)
                status, page_headers, page = page_handler(ctx, method, path, body.decode())
                self.store.commit()
            return self._with_events(Response(status, page, page_headers), ctx.events)
        return self._api(
            method, path, query, {k.lower(): v for k, v in headers.items()}, body.decode()
        )

    def release(self, response: Response) -> None:
        """Hand a response's events to webhook delivery once it has been answered."""
        if response.events:
            self.webhooks.release(response.events)

    def _api(
        self, method: str, path: str, query: str, headers: dict[str, str], body: str
    ) -> Response:
        request_id = new_id("req")
        base_headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        fault = self.faults.take_request_fault(method, path)
        if fault is not None and fault.kind == "timeout_after_commit":
            # Done and saved in full; only the answer is lost on its way back.
            response = self._request(method, path, query, headers, body, request_id, base_headers)
            response.hang = fault.seconds
            return response
        if fault is not None:
            return self._fault_response(fault.kind, fault.seconds, base_headers)
        return self._request(method, path, query, headers, body, request_id, base_headers)

    def _request(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: str,
        request_id: str,
        base_headers: dict[str, str],
    ) -> Response:
        try:
            api_key = _api_key(headers)
            found = find(ROUTES, method, path)
            if found is None:
                raise StripeError(
                    404,
                    f"Unrecognized request URL ({method}: {path}). Please see https://docs.stripe.com.",
                )
            route, path_args = found
            encoded = body if method == "POST" else query
            params = validate(route.params, decode(encoded))
            if "limit" in params:
                limit_check(params["limit"])
            idempotency_key = headers.get("idempotency-key") if method == "POST" else None
            if idempotency_key is not None and len(idempotency_key) > IDEMPOTENCY_KEY_MAX_LENGTH:
                raise invalid_request(
                    "Invalid Idempotency-Key: it can be at most "
                    f"{IDEMPOTENCY_KEY_MAX_LENGTH} characters long.",
                    param="idempotency_key",
                )
        except StripeError as error:
            return json_response(error.status, error.envelope(), base_headers)
        with self.lock:
            if idempotency_key:
                replay = self._replay(api_key, idempotency_key, method, path, encoded, base_headers)
                if replay is not None:
                    return replay
            ctx = Context(self, request_id=request_id, idempotency_key=idempotency_key)
            try:
                result = route.call(ctx, params, path_args)
                status, payload = (
                    200,
                    render_with_expand(self.store, result, params.get("expand", [])),
                )
            except StripeError as error:
                status, payload = error.status, error.envelope()
                if status != 402:  # a refused request changes nothing; a decline is recorded
                    self._undo(ctx)
            except Exception:  # noqa: BLE001 - an emulator bug answers like Stripe's api_error
                traceback.print_exc()
                self._undo(ctx)
                status, payload = (
                    500,
                    {"error": {"type": "api_error", "message": "Emulator error."}},
                )
            if idempotency_key and status != 500:
                self.store.remember(
                    f"{api_key}:{idempotency_key}",
                    {
                        "created": time.time(),
                        "fingerprint": _fingerprint(method, path, encoded),
                        "status": status,
                        "body": payload,
                    },
                )
            self.store.commit()
        headers_out = dict(base_headers)
        if idempotency_key:
            headers_out["Idempotency-Key"] = idempotency_key
        return self._with_events(json_response(status, payload, headers_out), ctx.events)

    def _undo(self, ctx: Context) -> None:
        self.store.rollback()
        ctx.events.clear()

    def _with_events(self, response: Response, events: list[Obj]) -> Response:
        if events:
            response.events = events
            self.webhooks.expect()
        return response

    def _replay(
        self, api_key: str, key: str, method: str, path: str, encoded: str, headers: dict[str, str]
    ) -> Response | None:
        record = self.store.idempotency.get(f"{api_key}:{key}")
        if record is None or time.time() - record.get("created", 0) > IDEMPOTENCY_KEY_LIFETIME:
            return None  # Stripe prunes keys after 24 hours: a reuse is a new request
        if record["fingerprint"] != _fingerprint(method, path, encoded):
            error = StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            )
            return json_response(400, error.envelope(), headers)
        return json_response(
            record["status"],
            record["body"],
            {**headers, "Idempotency-Key": key, "Idempotent-Replayed": "true"},
        )

    def _fault_response(self, kind: str, seconds: float, headers: dict[str, str]) -> Response:
        if kind == "timeout":
            return Response(0, b"", headers, hang=seconds)
        if kind == "error_429":
            error = StripeError(
                429,
                "Request rate limit exceeded. Learn more about rate limits here https://docs.stripe.com/rate-limits.",
                code="rate_limit",
            )
            return json_response(429, error.envelope(), headers)
        error = StripeError(500, "An unknown error occurred", type="api_error")
        return json_response(500, error.envelope(), headers)

    def _control(self, method: str, path: str, body: bytes) -> Response:
        """``/_emulator/*``: health, reset, delivery log, faults, a saved card's charge
        behaviour. Local tooling, no auth."""
        if (method, path) == ("GET", "/_emulator/health"):
            return json_response(200, {"status": "ok", "api_version": API_VERSION})
        if (method, path) == ("POST", "/_emulator/reset"):
            self.reset()
            return json_response(200, {"status": "reset"})
        if (method, path) == ("GET", "/_emulator/deliveries"):
            return json_response(
                200, {"data": self.webhooks.deliveries(), "pending": self.webhooks.pending()}
            )
        if (
            method == "POST"
            and path.startswith("/_emulator/payment_methods/")
            and path.endswith("/charge_behavior")
            and path.count("/") == 4
        ):
            return self._control_charge_behavior(path, body)
        if path == "/_emulator/faults":
            if method == "GET":
                return json_response(200, {"data": self.faults.listing()})
            if method == "DELETE":
                self.faults.clear()
                return json_response(200, {"data": []})
            if method == "POST":
                try:
                    spec = (
                        json.loads(body)
                        if body.strip().startswith(b"{")
                        else dict(parse_qsl(body.decode()))
                    )
                    fault = self.faults.add(spec)
                except (FaultSpecError, json.JSONDecodeError) as error:
                    return json_response(400, invalid_request(str(error)).envelope())
                return json_response(200, {"fault": asdict(fault)})
        return json_response(
            404, invalid_request(f"Unknown emulator endpoint {method} {path}").envelope()
        )

    def card_behavior_set(
        self, payment_method: str, *, decline_code: str | None = None, requires_action: bool = False
    ) -> dict[str, Any]:
        """Make every later charge of a saved card decline with ``decline_code`` (it expired,
        was reported lost or stolen), need authentication, or (neither) succeed. Raises
        ``LookupError`` for an unknown payment method and ``ValueError`` for a bad setting."""
        with self.lock:
            method = self.store.get(payment_method)
            if method is None or method.get("object") != "payment_method":
                raise LookupError(f"No such PaymentMethod: '{payment_method}'")
            charge_behavior_set(method, decline_code=decline_code, requires_action=requires_action)
            self.store.touch(method)
            self.store.commit()
            return {"payment_method": payment_method, **method["_charge_behavior"]}

    def _control_charge_behavior(self, path: str, body: bytes) -> Response:
        payment_method = path.removeprefix("/_emulator/payment_methods/").partition("/")[0]
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("the body is a JSON object")
            unknown = set(spec) - {"decline_code", "requires_action"}
            if unknown:
                raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
            if not isinstance(spec.get("requires_action", False), bool):
                raise ValueError("requires_action is true or false")
            if not isinstance(spec.get("decline_code"), str | None):
                raise ValueError("decline_code is a string")
            result = self.card_behavior_set(
                payment_method,
                decline_code=spec.get("decline_code"),
                requires_action=spec.get("requires_action", False),
            )
        except LookupError as missing:
            return json_response(
                404, StripeError(404, str(missing), code="resource_missing").envelope()
            )
        except ValueError as error:  # json.JSONDecodeError included
            return json_response(400, invalid_request(str(error)).envelope())
        return json_response(200, result)

    def reset(self) -> None:
        with self.lock:
            self.store.reset()
            self.faults.clear()
            self.webhooks.reset()
            account_ensure(self.store)
            self.store.commit()

    def close(self) -> None:
        self.webhooks.stop()
        self.store.close()


# Hosted pages a customer's browser opens: no API key, answered in HTML.
_PAGES = {"checkout": hosted.checkout_page, "invoice": hosted.invoice_page}


def _api_key(headers: dict[str, str]) -> str:
    authorization = headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            credential = base64.b64decode(credential).decode(errors="replace").partition(":")[0]
        except ValueError:  # not base64: no key was given
            credential = ""
    elif scheme.lower() != "bearer":
        credential = ""
    if not credential:
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY').",
        )
    if not credential.startswith("sk_test_") or len(credential) <= len("sk_test_"):
        shown = credential[:8] + "*" * max(0, len(credential) - 12) + credential[-4:]
        raise StripeError(401, f"Invalid API Key provided: {shown}")
    return credential


def _fingerprint(method: str, path: str, encoded: str) -> str:
    canonical = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(encoded, keep_blank_values=True)))
    return f"{method} {path} {canonical}"
