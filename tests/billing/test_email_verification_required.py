"""Billing actions wait for a confirmed email address: an unconfirmed owner is refused with
a page offering a new link, and nothing reaches Stripe."""

import pytest
from django.urls import reverse

from accounts.services import email_verify
from billing.models import BillingInfo
from billing.setup import catalog_push
from licensing.catalog import catalog_read

REFUSED = [
    ("billing:payment_method_add", {}, {"attempt": "a" * 32}),
    ("billing:payment_method_remove", {"stripe_id": "pm_anything"}, {}),
    ("billing:details", {}, {"name": "Acme", "email": "owner@example.com", "country": "FR"}),
    ("billing:plan_upgrade", {"code": "pro"}, {}),
    ("billing:plan_change", {"code": "pro"}, {"proration": "x"}),
]


@pytest.fixture
def unconfirmed_client(signed_in_client, membership, stripe_emulator):
    membership.user.email_verified_at = None
    membership.user.save()
    catalog_push(catalog=catalog_read())
    return signed_in_client


@pytest.mark.parametrize(("name", "kwargs", "data"), REFUSED)
def test_an_unconfirmed_owner_is_refused_billing_actions(
    unconfirmed_client, stripe_emulator, name, kwargs, data
):
    before = stripe_emulator.emulator_counts()

    response = unconfirmed_client.post(reverse(name, kwargs=kwargs), data)

    assert response.status_code == 403
    page = response.content.decode()
    assert "Confirm your email address first" in page
    assert reverse("email_verification_resend") in page
    assert "Resend the confirmation email" in page
    assert stripe_emulator.emulator_counts() == before
    assert not BillingInfo.objects.exists()


def test_an_unconfirmed_owner_may_still_read_the_billing_pages(unconfirmed_client):
    for name in ("billing:overview", "billing:payment_methods", "billing:details"):
        assert unconfirmed_client.get(reverse(name)).status_code == 200


def test_once_confirmed_the_same_action_goes_through(
    unconfirmed_client, membership, stripe_emulator
):
    page = unconfirmed_client.get(reverse("billing:payment_methods"))
    add = reverse("billing:payment_method_add")
    assert unconfirmed_client.post(add, {"attempt": page.context["attempt"]}).status_code == 403

    email_verify(user=membership.user)
    response = unconfirmed_client.post(add, {"attempt": page.context["attempt"]})

    assert response.status_code == 302
    assert BillingInfo.objects.for_customer(membership.customer) is not None
