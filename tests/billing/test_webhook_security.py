"""Forged, unsigned or stale webhooks are refused with 400 and change nothing."""

import json
import time

import pytest
import stripe
from djstripe.models import Event

from billing.cards import billing_info_ensure
from billing.models import PaymentMethod


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
    assert not PaymentMethod.objects.exists()


def test_a_well_signed_webhook_is_processed(client, stripe_emulator, attached_event_body):
    signature = sign(attached_event_body, endpoint_secret(stripe_emulator), int(time.time()))
    response = post(client, stripe_emulator, attached_event_body, signature)

    assert response.status_code == 200
    assert PaymentMethod.objects.count() == 1
