"""Signed webhook delivery, after the request that caused the events has been answered.

Deliveries wait in a queue ordered by due time. Over HTTP a background thread sends them;
in-process, ``flush()`` hands them to a Python callback, so tests stay deterministic.
Failures are retried with exponential backoff; every attempt is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .faults import Faults
from .store import Obj

LOG_SIZE = 10_000  # delivery attempts kept for GET /_emulator/deliveries

# (url, body, headers) -> HTTP status; raising counts as a failed attempt.
Transport = Callable[[str, bytes, dict[str, str]], int]


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value Stripe computes for ``payload``."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def http_transport(url: str, body: bytes, headers: dict[str, str]) -> int:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook URL must be http(s): {url}")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - scheme checked above
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    event_id: str = field(compare=False)
    event_type: str = field(compare=False)
    endpoint_id: str = field(compare=False)
    url: str = field(compare=False)
    secret: str = field(compare=False)
    payload: bytes = field(compare=False)
    attempt: int = field(compare=False, default=1)


class Dispatcher:
    """Queue, send, retry and log webhook deliveries."""

    def __init__(
        self,
        transport: Transport,
        faults: Faults,
        *,
        background: bool,
        retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0),
    ) -> None:
        self._transport = transport
        self._faults = faults
        self._retry_delays = retry_delays
        self._queue: list[_Delivery] = []
        self._held: list[_Delivery] = []
        self._seq = 0
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self._cond = threading.Condition()
        self._endpoints: Callable[[], list[Obj]] = list
        self._acknowledged: Callable[[str, str], None] = lambda event_id, endpoint_id: None
        self._stopped = False
        self._in_flight = 0
        self._unreleased = 0  # responses answered-to-be whose events are not queued yet
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._run, name="webhook-dispatcher", daemon=True
            )
            self._thread.start()

    def bind_endpoints(self, endpoints: Callable[[], list[Obj]]) -> None:
        self._endpoints = endpoints

    def bind_acknowledgements(self, acknowledged: Callable[[str, str], None]) -> None:
        """``acknowledged(event_id, endpoint_id)`` runs when an endpoint answers 2xx: Stripe
        times a renewal draft's finalization from the answer to its ``invoice.created``."""
        self._acknowledged = acknowledged

    def endpoint_count(self, event_type: str) -> int:
        return len(self._matching(event_type))

    def endpoint_ids(self, event_type: str) -> list[str]:
        return [endpoint["id"] for endpoint in self._matching(event_type)]

    def _matching(self, event_type: str) -> list[Obj]:
        return [
            endpoint
            for endpoint in self._endpoints()
            if endpoint["status"] == "enabled"
            and ("*" in endpoint["enabled_events"] or event_type in endpoint["enabled_events"])
        ]

    def expect(self) -> None:
        """A response carrying events is on its way out; ``release`` will follow."""
        with self._cond:
            self._unreleased += 1

    def release(self, events: list[Obj]) -> None:
        """Queue deliveries of events whose request has been answered and saved."""
        # Endpoints are read before taking the queue's lock: reading them takes the
        # emulator's lock, which is never taken while holding the queue's.
        targets = [(event, self._matching(event["type"])) for event in events]
        with self._cond:
            self._unreleased -= 1
            for event, endpoints in targets:
                if endpoints:
                    self._queue_event(event, endpoints)
            self._queue.sort()
            self._cond.notify_all()

    def _queue_event(self, event: Obj, endpoints: list[Obj]) -> None:
        payload = json.dumps(event, indent=2).encode()
        fault = self._faults.take_webhook_fault()
        if fault is None:
            self._queue += [self._delivery(event, endpoint, payload) for endpoint in endpoints]
            return
        for endpoint in endpoints:
            delivery = self._delivery(event, endpoint, payload)
            if fault.kind == "webhook_out_of_order":
                self._held.append(delivery)
                continue
            if fault.kind == "webhook_late":
                delivery.due += fault.seconds
            self._queue.append(delivery)
            if fault.kind == "webhook_duplicate":
                self._queue.append(self._delivery(event, endpoint, payload))
        if fault.kind == "webhook_out_of_order" and fault.count == 0:
            self._release_held()

    def release_held(self) -> None:
        """Send now, newest first, what an out-of-order fault is still holding (its count
        not yet reached): for tests that want every delivery out at a step's end."""
        with self._cond:
            self._release_held()
            self._queue.sort()
            self._cond.notify_all()

    def _release_held(self) -> None:
        """Send held deliveries newest first, each due as soon as it can be."""
        now = time.monotonic()
        for delivery in reversed(self._held):
            delivery.due, delivery.seq = now, self._next_seq()
            self._queue.append(delivery)
        self._held.clear()

    def _delivery(self, event: Obj, endpoint: Obj, payload: bytes) -> _Delivery:
        return _Delivery(
            due=time.monotonic(),
            seq=self._next_seq(),
            event_id=event["id"],
            event_type=event["type"],
            endpoint_id=endpoint["id"],
            url=endpoint["url"],
            secret=endpoint["_secret"],
            payload=payload,
        )

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def flush(self) -> int:
        """Send every delivery that is due now (in-process mode); return how many were sent."""
        sent = 0
        while True:
            with self._cond:
                if not self._queue or self._queue[0].due > time.monotonic():
                    return sent
                delivery = self._queue.pop(0)
                self._in_flight += 1
            self._attempt(delivery)
            sent += 1

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                    not self._queue or self._queue[0].due > time.monotonic()
                ):
                    timeout = self._queue[0].due - time.monotonic() if self._queue else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                delivery = self._queue.pop(0)
                self._in_flight += 1
            self._attempt(delivery)

    def _attempt(self, delivery: _Delivery) -> None:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(delivery.payload, delivery.secret, timestamp),
            "User-Agent": "stripe-emulator-webhooks",
        }
        status, error = 0, None
        try:
            status = self._transport(delivery.url, delivery.payload, headers)
        except Exception as exc:  # noqa: BLE001 - any transport failure is a failed attempt
            error = f"{type(exc).__name__}: {exc}"
        succeeded = 200 <= status < 300
        if succeeded:
            # Before the attempt stops counting as in flight, so that whoever waits for
            # deliveries to settle also sees what the acknowledgement changed.
            self._acknowledged(delivery.event_id, delivery.endpoint_id)
        with self._cond:
            self._in_flight -= 1
            self._log.append(
                {
                    "event": delivery.event_id,
                    "type": delivery.event_type,
                    "endpoint": delivery.endpoint_id,
                    "url": delivery.url,
                    "attempt": delivery.attempt,
                    "status": status or None,
                    "error": error,
                    "succeeded": succeeded,
                    "at": timestamp,
                }
            )
            if not succeeded and delivery.attempt <= len(self._retry_delays):
                delivery.due = time.monotonic() + self._retry_delays[delivery.attempt - 1]
                delivery.attempt += 1
                delivery.seq = self._next_seq()
                self._queue.append(delivery)
                self._queue.sort()
                self._cond.notify_all()

    def deliveries(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._log)

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._held) + self._in_flight + self._unreleased

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued (background mode); for tests and benchmarks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.01)
        return False

    def reset(self) -> None:
        with self._cond:
            self._queue.clear()
            self._held.clear()
            self._log.clear()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
