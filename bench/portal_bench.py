"""The portal's in-process figures: check-access decided without HTTP, license signing
and verifying, and Stripe webhooks: receipt (verify + store) and processing, events/s.
Builds a throwaway SQLite database; needs nothing running. Over HTTP, beside a no-op view,
on PostgreSQL: bench/http_compare.py.

    python bench/portal_bench.py [--events 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_django(data_dir: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DATA_DIR"] = data_dir
    os.environ["DJANGO_SECRET_KEY"] = "bench-only-" + "x" * 40
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


def seed() -> str:
    """A paying customer with some usage; returns their id."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.services import customer_signup
    from licensing.catalog import catalog_read
    from licensing.models import CustomerPlan, Plan
    from licensing.services import catalog_load, usage_record

    catalog_load(catalog=catalog_read())
    customer = customer_signup(email="bench@example.com", password="bench-pass-123456").customer
    now = timezone.now()
    CustomerPlan.objects.create(
        customer=customer, plan=Plan.objects.get(code="pro"), status="active",
        current_period_start=now - timedelta(days=1), current_period_end=now + timedelta(days=29),
        subscription_id="sub_bench",
    )  # fmt: skip
    for i in range(100):
        usage_record(customer=customer, feature="api_calls", quantity=5, idempotency_key=f"b{i}")
    return customer.customer_id


def timed(function, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2] * 1e6
    p99 = ordered[int(len(ordered) * 0.99)] * 1e6
    return f"mean {statistics.fmean(samples) * 1e6:7.1f} µs, p50 {p50:7.1f} µs, p99 {p99:7.1f} µs"


def in_process(customer_id: str) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from licensing.entitlements import check_access

    decide = lambda: check_access(customer_id=customer_id, feature="api_calls", requested_usage=1)
    timed(decide, 200)  # warm up
    with CaptureQueriesContext(connection) as queries:
        decision = decide()
    assert decision.has_access, decision
    print(
        f"check-access in-process ({len(queries)} queries, SQLite): {describe(timed(decide, 3000))}"
    )


def licenses(customer_id: str) -> None:
    from accounts.models import Customer
    from licensing.licenses import _license_sign, entitlements_for, jwks
    from licensing.verify import license_verify

    customer = Customer.objects.get(pk=customer_id)
    wanted = entitlements_for(customer)
    from licensing.licenses import signing_key

    kid, private_key = signing_key()
    import jwt

    claims = {
        "sub": customer_id, "aud": "billing-portal-license", "iss": "bench", "iat": 1, "nbf": 1,
        "exp": 4102444800, "jti": "x", "features": wanted.features,
    }  # fmt: skip
    sign = lambda: jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": kid})
    token = _license_sign(customer, wanted).token
    keys = jwks()
    verify = lambda: license_verify(token, keys)
    print(f"license sign (Ed25519 JWT):  {describe(timed(sign, 2000))}")
    print(f"license verify (offline):    {describe(timed(verify, 2000))}")


def webhooks(events: int) -> None:
    """Webhook receipt (signature check, one row, the task queued) through the real view,
    in-process; then processing (fetch the object from the in-process emulator, mirror
    it through dj-stripe) of the stored events."""
    from django.conf import settings
    from django.test import Client
    from djstripe.models import WebhookEndpoint

    from billing import gateway
    from billing.events import stripe_event_process
    from billing.models import StripeEvent
    from stripe_emulator import InProcessHTTPClient, emulator_in_process
    from stripe_emulator.webhooks import sign

    emulator = emulator_in_process()
    http = InProcessHTTPClient(emulator, deliver_webhooks=False)
    settings.STRIPE_SECRET_KEY = "sk_test_" + "bench0webhooks0key0000000000"
    gateway.stripe_configure(transport=http)
    api = gateway.client().v1
    remote = api.webhook_endpoints.create({"url": "http://localhost/x", "enabled_events": ["*"]})
    endpoint = WebhookEndpoint.objects.create(
        id=remote.id, livemode=False, secret=remote.secret, url=remote.url, api_version="",
        enabled_events=["*"], status="enabled",
    )  # fmt: skip
    for i in range(events):
        api.customers.create({"email": f"bench{i}@example.com"})
    listed = [e.to_dict() for e in api.events.list({"limit": 100}).auto_paging_iter()]
    bodies = []
    for event in listed:
        body = json.dumps(event, default=str)
        timestamp = int(time.time())
        bodies.append((body, sign(body.encode(), remote.secret, timestamp)))
    client = Client(HTTP_HOST="localhost")
    url = f"/stripe/webhook/{endpoint.djstripe_uuid}/"
    started = time.perf_counter()
    for body, signature in bodies:
        response = client.post(url, data=body, content_type="application/json",
                               headers={"Stripe-Signature": signature})  # fmt: skip
        assert response.status_code == 200, response.content
    received = time.perf_counter() - started
    print(f"webhook receipt (verify + store + queue): {len(bodies) / received:7.0f} events/s "
          f"({len(bodies)} events)")  # fmt: skip
    ids = list(StripeEvent.objects.values_list("pk", flat=True))
    started = time.perf_counter()
    for event_id in ids:
        assert stripe_event_process(event_id=event_id)
    processed = time.perf_counter() - started
    print(f"webhook processing (fetch + mirror):      {len(ids) / processed:7.0f} events/s "
          f"({len(ids)} events, emulator in-process)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        setup_django(data_dir)
        customer_id = seed()
        print(f"machine: {os.cpu_count()} cores; SQLite in a temporary data dir")
        in_process(customer_id)
        licenses(customer_id)
        webhooks(args.events)


if __name__ == "__main__":
    main()
