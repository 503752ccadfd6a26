"""Billing tests talk to the Stripe emulator in-process: stripe-python's HTTP client hands
each request to the emulator with no socket, for the portal and for dj-stripe alike.
Webhooks wait in the emulator until a test calls `stripe_emulator.deliver()`, which posts
them, signed, to dj-stripe's webhook URL through Django's test client, as Stripe would."""

import time
import uuid
from urllib.parse import urlsplit

import pytest
import stripe
from django.db import connection
from django.test import Client, TestCase
from djstripe.models import WebhookEndpoint

from billing import gateway
from stripe_emulator.inprocess import InProcessHTTPClient, emulator_in_process

TEST_SECRET_KEY = "sk_test_" + "portal0emulator0key0123456789"


class CountingHTTPClient(InProcessHTTPClient):
    """Counts the API requests, to show that a page asked Stripe nothing."""

    def __init__(self, emulator) -> None:
        super().__init__(emulator, deliver_webhooks=False)
        self.requests: list[tuple[str, str]] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        self.requests.append((method.upper(), urlsplit(url).path))
        return super().request(method, url, headers, post_data, _usage=_usage)


class StripeEmulator:
    def __init__(self) -> None:
        self.webhook_client = Client()
        self.webhook_statuses: list[int] = []
        # While True, the webhook endpoint answers 503 to every delivery (the portal is down).
        self.endpoint_down = False
        self.emulator = emulator_in_process(self._post_to_djstripe)
        self.http = CountingHTTPClient(self.emulator)
        self.client = stripe.StripeClient(TEST_SECRET_KEY, http_client=self.http)
        self.faults = self.emulator.faults

    def connect_webhooks(self) -> None:
        """Register dj-stripe's webhook URL at the emulator, as `stripe_setup` does."""
        self.uuid = uuid.uuid4()
        endpoint = self.client.v1.webhook_endpoints.create(
            {"url": f"http://testserver/stripe/webhook/{self.uuid}/", "enabled_events": ["*"]}
        )
        WebhookEndpoint.objects.create(
            id=endpoint.id,
            livemode=False,
            secret=endpoint.secret,
            url=endpoint.url,
            api_version=endpoint.api_version or "",
            enabled_events=["*"],
            status="enabled",
            djstripe_uuid=self.uuid,
        )

    def _post_to_djstripe(self, body: bytes, headers: dict[str, str]) -> int:
        if self.endpoint_down:
            self.webhook_statuses.append(503)
            return 503
        signature = {k.lower(): v for k, v in headers.items()}["stripe-signature"]
        # The event is processed by a task queued on commit; inside a test case's own
        # transaction (no transaction=True) nothing commits, so run those callbacks here.
        with TestCase.captureOnCommitCallbacks(execute=connection.in_atomic_block):
            response = self.webhook_client.post(
                f"/stripe/webhook/{self.uuid}/",
                data=body,
                content_type="application/json",
                headers={"Stripe-Signature": signature},
            )
        self.webhook_statuses.append(response.status_code)
        return response.status_code

    def emulator_counts(self) -> dict[str, int]:
        """How many objects of each type the emulator holds."""
        return {
            kind: len(self.emulator.store.select(kind, lambda obj: True))
            for kind in ("product", "price", "customer", "subscription", "webhook_endpoint")
        }

    def deliver(self) -> None:
        """Deliver every webhook the emulator has queued or is holding; each must be
        accepted."""
        self.emulator.webhooks.release_held()
        self.emulator.webhooks.flush()
        if not self.endpoint_down:
            assert set(self.webhook_statuses) <= {200}, self.webhook_statuses

    def advance_clock(self, clock_id: str, frozen_time: int, *, timeout: float = 5.0):
        """Advance a test clock, poll until it is ready (Stripe answers `advancing` and
        moves the clock's objects afterwards), then deliver what the advance sent."""
        clock = self.client.v1.test_helpers.test_clocks.advance(
            clock_id, {"frozen_time": frozen_time}
        )
        deadline = time.monotonic() + timeout
        while clock.status == "advancing":
            assert time.monotonic() < deadline, f"test clock {clock_id} still advancing"
            time.sleep(0.01)
            clock = self.client.v1.test_helpers.test_clocks.retrieve(clock_id)
        assert clock.status == "ready", clock.status
        self.deliver()
        return clock

    def complete_checkout(self, url: str, token: str = "pm_card_visa") -> str:
        """Pay on the emulator's hosted Checkout page; returns where it redirects to."""
        response = self.http.dispatch("POST", url, {}, f"payment_method={token}")
        assert response.status == 303, response.body[:500]
        return response.headers["Location"]


@pytest.fixture
def stripe_emulator(settings, db):
    emulator = StripeEmulator()
    settings.STRIPE_SECRET_KEY = TEST_SECRET_KEY
    settings.BILLING_ENABLED = True
    gateway.stripe_configure(transport=emulator.http)
    emulator.connect_webhooks()
    yield emulator
    gateway.stripe_configure()


@pytest.fixture
def stripe_client(stripe_emulator):
    """A client for the test itself, to look at what the emulator holds."""
    return stripe_emulator.client
