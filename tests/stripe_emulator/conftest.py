"""Emulator fixtures: a server on a free port, a webhook receiver, and a harness that runs
the same scenario over HTTP or in-process with stripe-python as the client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import stripe

from stripe_emulator import Emulator, EmulatorHTTPServer, InProcessHTTPClient, emulator_in_process

API_KEY = "sk_test_emulator0000000000000000"
FAST_RETRIES = (0.05, 0.1, 0.2)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "djstripe: round trip through dj-stripe's webhook view (needs the database)"
    )


@dataclass
class RunningServer:
    emulator: Emulator
    server: EmulatorHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.emulator.base_url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.emulator.close()


def start_server(data_dir: Path, **options: Any) -> RunningServer:
    emulator = Emulator(data_dir, retry_delays=options.pop("retry_delays", FAST_RETRIES), **options)
    server = EmulatorHTTPServer(emulator, "127.0.0.1", 0)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return RunningServer(emulator, server, thread)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "emulator")
    yield running
    running.stop()


def http_client(base_url: str, **options: Any) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY,
        base_addresses={"api": base_url},
        max_network_retries=options.pop("max_network_retries", 0),
        **options,
    )


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it receives and answers ``statuses``."""

    url: str = ""
    deliveries: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_delivery: Any = None

    def record(self, body: bytes, headers: dict[str, str]) -> int:
        if self.on_delivery is not None:
            self.on_delivery(body, headers)
        with self.lock:
            self.deliveries.append((body, headers))
            return self.statuses.pop(0) if self.statuses else 200

    def event_ids(self) -> list[str]:
        with self.lock:
            return [json.loads(body)["id"] for body, _ in self.deliveries]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = found.record(body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    found.url = f"http://127.0.0.1:{httpd.server_address[1]}/webhook"
    yield found
    httpd.shutdown()
    httpd.server_close()


class Harness:
    """The scenario's view of one emulator, whichever way it is reached."""

    client: stripe.StripeClient
    emulator: Emulator
    receiver_url = "http://127.0.0.1:9/unused"
    secret = ""

    def subscribe_webhooks(self) -> None:
        endpoint = self.client.v1.webhook_endpoints.create(
            {"url": self.receiver_url, "enabled_events": ["*"]}
        )
        self.secret = endpoint.secret

    def submit_checkout(self, url: str, token: str) -> tuple[int, str]:
        raise NotImplementedError

    def settle(self) -> None:
        raise NotImplementedError

    def advance(self, clock_id: str, frozen_time: int) -> None:
        """Advance a test clock until it is ``ready``, then let the webhooks it caused be
        delivered (and acknowledged, which starts a renewal draft's hour)."""
        advance_clock(self.client.v1, clock_id, frozen_time)
        self.settle()

    def raw_deliveries(self) -> list[tuple[bytes, dict[str, str]]]:
        raise NotImplementedError

    def events(self) -> list[stripe.Event]:
        """Every delivered event, each verified the way a receiver must verify it."""
        self.settle()
        return [
            stripe.Webhook.construct_event(body.decode(), headers["stripe-signature"], self.secret)
            for body, headers in self.raw_deliveries()
        ]


class HttpHarness(Harness):
    def __init__(self, running: RunningServer, receiver: Receiver) -> None:
        self.running, self.receiver = running, receiver
        self.emulator = running.emulator
        self.client = http_client(running.url)
        self.receiver_url = receiver.url

    def submit_checkout(self, url: str, token: str) -> tuple[int, str]:
        response = requests.post(
            url, data={"payment_method": token}, allow_redirects=False, timeout=10
        )
        return response.status_code, response.headers.get("Location", response.text)

    def settle(self) -> None:
        assert self.emulator.webhooks.wait_idle(10)

    def raw_deliveries(self) -> list[tuple[bytes, dict[str, str]]]:
        return list(self.receiver.deliveries)


class InProcessHarness(Harness):
    def __init__(self) -> None:
        self.delivered: list[tuple[bytes, dict[str, str]]] = []
        self.emulator = emulator_in_process(self._receive)
        self.http = InProcessHTTPClient(self.emulator)
        self.client = stripe.StripeClient(API_KEY, http_client=self.http)

    def _receive(self, body: bytes, headers: dict[str, str]) -> int:
        self.delivered.append((body, {k.lower(): v for k, v in headers.items()}))
        return 200

    def submit_checkout(self, url: str, token: str) -> tuple[int, str]:
        response = self.http.dispatch("POST", url, {}, f"payment_method={token}")
        return response.status, response.headers.get("Location", response.body.decode())

    def settle(self) -> None:
        self.emulator.webhooks.flush()

    def raw_deliveries(self) -> list[tuple[bytes, dict[str, str]]]:
        return list(self.delivered)


@pytest.fixture(params=["http", "in_process"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "in_process":
        yield InProcessHarness()
        return
    running = start_server(tmp_path / "emulator")
    receiver = request.getfixturevalue("receiver")
    yield HttpHarness(running, receiver)
    running.stop()


@pytest.fixture
def in_process() -> InProcessHarness:
    return InProcessHarness()


def path_of(url: str) -> str:
    return urlsplit(url).path


def advance_clock(v1: Any, clock_id: str, frozen_time: int, *, timeout: float = 5.0) -> Any:
    """Advance a test clock and poll until it is ``ready``, as a client of Stripe must: the
    advance answers ``advancing`` and the clock's objects move afterwards."""
    clock = v1.test_helpers.test_clocks.advance(clock_id, {"frozen_time": frozen_time})
    deadline = time.monotonic() + timeout
    while clock.status == "advancing":
        assert time.monotonic() < deadline, f"test clock {clock_id} still advancing"
        time.sleep(0.01)
        clock = v1.test_helpers.test_clocks.retrieve(clock_id)
    assert clock.status == "ready", clock.status
    return clock
