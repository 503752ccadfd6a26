"""Forged, unsigned or stale webhooks are refused with 400 and change nothing."""

import json
import time
from datetime import timedelta

import pytest
import stripe
from djstripe.models import Event

from billing.cards import billing_info_ensure
from billing.models import PaymentMethod, StripeEvent


@pytest.fixture
def attached_event_body(stripe_emulator, membership, other_membership):
    """A real payment_method.attached event of the emulator, not yet delivered."""
    billing_info = billing_info_ensure(customer=membership.customer, email="owner@example.com")
    stripe_emulator.client.v1.payment_methods.attach(
        "pm_card_visa", {"customer": billing_info.stripe_id}
    )
    [event] = stripe_emulator.client.v1.events.list({"type": "payment_method.attached"}).data
    return json.dumps(event.to_dict())


def sign(body: str, secret: str, timestamp: int) -> str:
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body}", secret)
    return f"t={timestamp},v1={signature}"


def post(client, stripe_emulator, body, signature=None):
    headers = {"Stripe-Signature": signature} if signature else {}
    return client.post(
        f"/stripe/webhook/{stripe_emulator.uuid}/",
        data=body,
        content_type="application/json",
        headers=headers,
    )


def endpoint_secret(stripe_emulator) -> str:
    from djstripe.models import WebhookEndpoint

    return WebhookEndpoint.objects.get(djstripe_uuid=stripe_emulator.uuid).secret


@pytest.mark.parametrize(
    "make_signature",
    [
        pytest.param(lambda body, secret: None, id="unsigned"),
        pytest.param(
            lambda body, secret: sign(body, "whsec_forged", int(time.time())), id="forged"
        ),
        pytest.param(lambda body, secret: sign(body, secret, int(time.time()) - 301), id="stale"),
        pytest.param(
            lambda body, secret: sign(body.replace("card", "carb"), secret, int(time.time())),
            id="tampered",
        ),
    ],
)
def test_bad_webhooks_are_refused_and_change_nothing(
    client, stripe_emulator, attached_event_body, make_signature
):
    signature = make_signature(attached_event_body, endpoint_secret(stripe_emulator))
    response = post(client, stripe_emulator, attached_event_body, signature)

    assert response.status_code == 400
    assert not Event.objects.exists()
    assert not StripeEvent.objects.exists()
    assert not PaymentMethod.objects.exists()


def test_a_well_signed_webhook_is_stored_then_processed(
    client, stripe_emulator, attached_event_body, django_capture_on_commit_callbacks
):
    signature = sign(attached_event_body, endpoint_secret(stripe_emulator), int(time.time()))
    with django_capture_on_commit_callbacks() as queued:
        response = post(client, stripe_emulator, attached_event_body, signature)

    # Answered once stored: nothing processed yet, one task queued for after the commit.
    assert response.status_code == 200
    [event] = StripeEvent.objects.all()
    assert (event.type, event.status) == ("payment_method.attached", "pending")
    assert not PaymentMethod.objects.exists()
    assert len(queued) == 1

    queued[0]()
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 1)
    assert PaymentMethod.objects.count() == 1


def test_a_replayed_webhook_changes_nothing(
    client, stripe_emulator, attached_event_body, django_capture_on_commit_callbacks
):
    signature = sign(attached_event_body, endpoint_secret(stripe_emulator), int(time.time()))
    with django_capture_on_commit_callbacks(execute=True):
        post(client, stripe_emulator, attached_event_body, signature)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = post(client, stripe_emulator, attached_event_body, signature)

    assert response.status_code == 200
    assert not queued
    assert StripeEvent.objects.get().attempts == 1
    assert PaymentMethod.objects.count() == 1


def test_an_event_about_an_object_we_do_not_know_is_stored_and_ignored(
    client, stripe_emulator, stripe_client, django_capture_on_commit_callbacks
):
    stranger = stripe_client.v1.customers.create({"email": "nobody@example.com"})
    stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": stranger.id})
    [event] = stripe_client.v1.events.list({"type": "payment_method.attached"}).data
    body = json.dumps(event.to_dict())
    signature = sign(body, endpoint_secret(stripe_emulator), int(time.time()))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, stripe_emulator, body, signature)

    assert response.status_code == 200
    assert StripeEvent.objects.get().status == "processed"
    assert not PaymentMethod.objects.exists()


def test_processing_that_fails_on_stripe_is_recorded_retried_and_then_succeeds(
    client, stripe_emulator, attached_event_body, django_capture_on_commit_callbacks
):
    # Stripe answers 500 to every fetch of the card for a while: the task's retries fail too.
    stripe_emulator.faults.add(
        {"kind": "error_500", "method": "GET", "path": "/v1/payment_methods", "count": 1000}
    )
    signature = sign(attached_event_body, endpoint_secret(stripe_emulator), int(time.time()))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, stripe_emulator, attached_event_body, signature)

    assert response.status_code == 200  # stored: Stripe's trouble is not the receipt's
    event = StripeEvent.objects.get()
    # In the tests' eager mode Celery stops at asking for the retry; a worker runs it later,
    # with backoff, and the same keys (they derive from the objects, not the attempt).
    assert (event.status, event.attempts) == ("failed", 1)
    assert event.last_error.startswith("GatewayUnavailable")
    from billing.errors import GatewayUnavailable
    from billing.tasks import stripe_event_process

    assert stripe_event_process.autoretry_for == (GatewayUnavailable,)
    assert stripe_event_process.retry_backoff
    assert not PaymentMethod.objects.exists()

    stripe_emulator.faults.clear()
    from billing.events import events_reconcile

    events_reconcile(now=event.received_at + timedelta(hours=1))  # a later pass retries it
    event.refresh_from_db()
    assert (event.status, event.last_error) == ("processed", "")
    assert PaymentMethod.objects.count() == 1
