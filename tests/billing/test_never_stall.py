"""A Stripe that does not answer stalls only the page waiting on it: every other write of the
portal goes on (no Stripe call is made while a database transaction is open), and the hung
page answers within the configured bound with the "not responding" message.

Runs on SQLite (the embedded default, a file with WAL as in `make run`) and on PostgreSQL
(CI runs the suite on both), against the emulator as its own HTTP server."""

import threading
import time

import pytest
import stripe
from django.db import connection
from django.test import Client
from django.urls import reverse

from billing import gateway
from licensing.api.authentication import service_key_create
from licensing.catalog import catalog_read
from licensing.licenses import signing_key
from licensing.services import catalog_load
from tests.accounts.factories import PASSWORD, MembershipFactory
from tests.billing.conftest import TEST_SECRET_KEY
from tests.stripe_emulator.conftest import start_server

pytestmark = pytest.mark.django_db(transaction=True)

OTHERS = 20
OTHERS_WITHIN = 2.0  # seconds, each


@pytest.fixture
def stripe_over_http(settings, tmp_path, monkeypatch):
    running = start_server(tmp_path / "emulator")
    settings.STRIPE_SECRET_KEY = TEST_SECRET_KEY
    settings.BILLING_ENABLED = True
    settings.STRIPE_API_BASE = running.url
    settings.STRIPE_CONNECT_TIMEOUT = 0.5
    settings.STRIPE_READ_TIMEOUT = 1.5
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    monkeypatch.setattr(stripe, "api_base", running.url)
    gateway.stripe_configure()
    yield running
    running.stop()
    gateway.stripe_configure()


def bound(settings) -> float:
    """What the settings promise: each try waits at most connect + read, and stripe-python
    sleeps at most half a second before the one retry; plus a second for the page."""
    tries = 1 + settings.STRIPE_MAX_NETWORK_RETRIES
    return tries * (settings.STRIPE_CONNECT_TIMEOUT + settings.STRIPE_READ_TIMEOUT) + 0.5 + 1.0


def test_a_hung_card_add_stalls_no_one_else(stripe_over_http, settings):
    catalog_load(catalog=catalog_read())
    signing_key()  # a running portal has its license key already (its first is not raced here)
    _record, service_key = service_key_create(name="tests")
    hung = MembershipFactory(user__email="hung@example.com")
    existing = [MembershipFactory(user__email=f"user{i}@example.com") for i in range(7)]
    # Every Stripe customer lookup of the card add hangs, longer than the read timeout.
    stripe_over_http.emulator.faults.add(
        {"kind": "timeout", "path": "/v1/customers", "seconds": 3, "count": 10}
    )

    hung_result = {}

    def add_card() -> None:
        client = Client()
        client.force_login(hung.user)
        started = time.monotonic()
        try:
            response = client.post(
                reverse("billing:payment_method_add"), {"attempt": "a" * 32}, follow=True
            )
            hung_result.update(seconds=time.monotonic() - started, page=response.content.decode())
        finally:
            connection.close()

    hung_thread = threading.Thread(target=add_card)
    hung_thread.start()
    # Until the card add is waiting on the emulator.
    deadline = time.monotonic() + 5
    while stripe_over_http.emulator.faults.listing()[0]["count"] == 10:
        assert time.monotonic() < deadline, "the card add never reached Stripe"
        time.sleep(0.01)

    def signup(i: int):
        return Client().post(
            reverse("signup"),
            {"email": f"new{i}@example.com", "password": "a-long-passphrase-9", "company_name": ""},
        )

    def login(i: int):
        return Client().post(
            reverse("login"), {"username": existing[i].user.email, "password": PASSWORD}
        )

    def usage(i: int):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")
        return client.post(
            reverse("api_usage"),
            {
                "customer_id": existing[i].customer.customer_id,
                "feature": "api_calls",
                "quantity": 1,
                "idempotency_key": f"stall-{i}",
            },
            content_type="application/json",
        )

    requests = [(signup, i, 302) for i in range(7)]
    requests += [(login, i, 302) for i in range(7)]
    requests += [(usage, i, 201) for i in range(6)]
    assert len(requests) == OTHERS
    barrier = threading.Barrier(OTHERS)
    results = []

    def other(call, i, expected) -> None:
        try:
            barrier.wait()
            started = time.monotonic()
            response = call(i)
            results.append((call.__name__, response.status_code, expected,
                            time.monotonic() - started))  # fmt: skip
        finally:
            connection.close()

    threads = [threading.Thread(target=other, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    hung_thread.join()

    assert len(results) == OTHERS
    assert [(name, status) for name, status, expected, _s in results if status != expected] == []
    slowest = max(seconds for *_rest, seconds in results)
    assert slowest < OTHERS_WITHIN, results
    assert hung_result["seconds"] < bound(settings), hung_result["seconds"]
    assert "not responding right now" in hung_result["page"]
