"""In-process mode: a stripe-python HTTP client that hands requests to an :class:`Emulator`
directly, with no socket, and webhooks handed to a Python callback."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import stripe

from .app import Emulator, Response

# (payload, headers) -> HTTP status the receiver answers (None counts as 200).
WebhookCallback = Callable[[bytes, dict[str, str]], int | None]


def callback_transport(callback: WebhookCallback) -> Callable[[str, bytes, dict[str, str]], int]:
    def send(url: str, body: bytes, headers: dict[str, str]) -> int:
        status = callback(body, headers)
        return 200 if status is None else status

    return send


def emulator_in_process(
    webhook_callback: WebhookCallback | None = None,
    *,
    base_url: str = "http://stripe-emulator.local",
    clock_advance_delay: float = 0.0,
    **retries: Any,
) -> Emulator:
    """An emulator with no persistence whose webhooks go to ``webhook_callback``. A test
    clock's advance finishes on the first request after ``clock_advance_delay`` seconds.
    ``retry_schedule``, ``retries_final_status`` and ``retries_final_invoice`` set Stripe's
    retries of failed renewal payments (see :class:`Emulator`)."""
    transport = callback_transport(webhook_callback or (lambda body, headers: 200))
    return Emulator(
        None,
        base_url=base_url,
        webhook_transport=transport,
        background_webhooks=False,
        retry_delays=(0, 0, 0),
        clock_advance_delay=clock_advance_delay,
        **retries,
    )


class InProcessHTTPClient(stripe.HTTPClient):
    """Use as ``stripe.default_http_client`` or ``stripe.StripeClient(http_client=…)``.

    With ``deliver_webhooks=True`` each request's webhooks are handed to the callback as
    soon as the request returns, before stripe-python sees the response; otherwise call
    ``emulator.webhooks.flush()`` when the test wants them.
    """

    name = "stripe-emulator-in-process"

    def __init__(self, emulator: Emulator, *, deliver_webhooks: bool = True) -> None:
        super().__init__()
        self.emulator = emulator
        self.deliver_webhooks = deliver_webhooks

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        response = self.dispatch(method, url, headers or {}, post_data)
        if response.hang is not None:
            raise stripe.APIConnectionError(
                "Request timed out (emulated timeout fault).", should_retry=True
            )
        return response.body.decode(), response.status, response.headers

    def dispatch(
        self, method: str, url: str, headers: Mapping[str, str], body: Any = None
    ) -> Response:
        """Run one request through the emulator and release its webhooks."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        payload = body.encode() if isinstance(body, str) else (body or b"")
        response = self.emulator.handle(method, target, dict(headers), payload)
        self.emulator.release(response)
        if self.deliver_webhooks:
            self.emulator.webhooks.flush()
        return response

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        raise NotImplementedError("The emulator has no streaming endpoints.")

    def close(self) -> None:
        """Nothing to close: there is no connection."""
