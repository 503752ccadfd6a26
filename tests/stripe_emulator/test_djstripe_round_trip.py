"""Must-show 4: every event of the journey, posted signed to dj-stripe's webhook URL, is
stored and then processed without error (each object fetched again from the emulator and
mirrored through dj-stripe), and the mirror ends up matching the emulator's state."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
import stripe

from .conftest import API_KEY, HttpHarness, Receiver, RunningServer
from .test_scenario import test_customer_journey as run_customer_journey

pytestmark = [pytest.mark.djstripe, pytest.mark.django_db]


@pytest.fixture
def journey(server: RunningServer, receiver: Receiver) -> HttpHarness:
    harness = HttpHarness(server, receiver)
    run_customer_journey(harness)
    harness.settle()
    return harness


def test_every_event_is_mirrored_by_djstripe(
    journey: HttpHarness,
    server: RunningServer,
    settings: Any,
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from djstripe import models as djstripe_models

    # dj-stripe reads the module-level api_base; the portal's own receivers use STRIPE_API_BASE.
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_API_BASE = server.url
    monkeypatch.setattr(stripe, "api_base", server.url)
    [endpoint] = journey.client.v1.webhook_endpoints.list().data
    mirror_endpoint = djstripe_models.WebhookEndpoint.objects.create(
        id=endpoint.id,
        livemode=False,
        secret=journey.secret,
        url=endpoint.url,
        api_version=endpoint.api_version,
        enabled_events=["*"],
        status="enabled",
        djstripe_uuid=uuid4(),
    )

    deliveries = journey.raw_deliveries()
    assert len(deliveries) > 40
    for body, headers in deliveries:
        # Processing is queued on the commit, which this test's transaction never reaches.
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/stripe/webhook/{mirror_endpoint.djstripe_uuid}/",
                data=body,
                content_type="application/json",
                headers={"Stripe-Signature": headers["stripe-signature"]},
            )
        assert response.status_code == 200, body[:200]

    from billing.models import StripeEvent

    events = StripeEvent.objects.all()
    assert events.count() == len({json.loads(body)["id"] for body, _ in deliveries})
    assert [(e.type, e.last_error) for e in events if e.status != "processed"] == []

    api = journey.client.v1
    [subscription] = api.subscriptions.list({"status": "all"}).data
    mirrored = djstripe_models.Subscription.objects.get(id=subscription.id)
    assert mirrored.stripe_data["status"] == subscription.status == "canceled"
    assert (
        mirrored.stripe_data["items"]["data"][0]["current_period_end"]
        == subscription["items"].data[0].current_period_end
    )
    customer = api.customers.retrieve(subscription.customer)
    assert (
        djstripe_models.Customer.objects.get(id=customer.id).stripe_data["invoice_settings"]
        == customer.invoice_settings.to_dict()
    )
    for invoice in api.invoices.list({"customer": customer.id, "limit": 100}).data:
        assert (
            djstripe_models.Invoice.objects.get(id=invoice.id).stripe_data["status"]
            == invoice.status
        )
    attached = {m.id for m in api.customers.payment_methods.list(customer.id).data}
    assert attached <= set(djstripe_models.PaymentMethod.objects.values_list("id", flat=True))


def test_djstripe_sync_models_runs_against_the_emulator(
    journey: HttpHarness, server: RunningServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every list dj-stripe's full sync reads is answered (modelled, or an empty list)."""
    from django.apps import apps
    from django.core.management import call_command
    from djstripe import models as djstripe_models

    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_API_BASE = server.url
    # dj-stripe's own full sync command fetches related objects inside its transactions;
    # the portal never runs it on a request path, and this test is about the emulator.
    settings.STRIPE_REFUSE_CALLS_IN_TRANSACTION = False
    monkeypatch.setattr(stripe, "api_base", server.url)
    # Left out, as each would fail against Stripe itself: AccountV2 (Stripe's v2 API, not
    # emulated); ActiveEntitlement (listed without the `customer` Stripe requires); TaxId
    # (listed with an `id` parameter /v1/tax_ids does not take); TaxCode (listed with the API
    # key bound when dj-stripe was imported, empty under the test settings); Event (dj-stripe
    # tests `isinstance(request, dict)`, which a stripe-python 15 StripeObject is not, so it
    # stores the whole object's text as the request id: too long for PostgreSQL's column).
    skipped = {"AccountV2", "ActiveEntitlement", "TaxId", "TaxCode", "Event"}
    models = apps.get_app_config("djstripe").get_models()
    labels = [model.__name__ for model in models if model.__name__ not in skipped]
    call_command(
        "djstripe_sync_models", *labels, api_keys=[API_KEY], fail_on_error=True, verbosity=0
    )
    [subscription] = journey.client.v1.subscriptions.list({"status": "all"}).data
    assert (
        djstripe_models.Subscription.objects.get(id=subscription.id).stripe_data["status"]
        == "canceled"
    )
    assert djstripe_models.Price.objects.count() == 1
