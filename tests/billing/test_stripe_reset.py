"""After the Stripe account is reset (the emulator's reset, or a portal pointed at another
Stripe account), `stripe_setup` heals the portal's links and a customer can upgrade again."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from audit.models import Entry
from billing.models import BillingInfo, PaymentMethod
from licensing.models import CustomerPlan, Plan
from tests.billing.test_plans import end_trial, upgrade

pytestmark = pytest.mark.django_db(transaction=True)  # emails are queued on commit


def stripe_setup() -> str:
    out = StringIO()
    call_command("stripe_setup", stdout=out)
    return out.getvalue()


def stripe_reset(stripe_emulator) -> None:
    """Stripe forgets everything; the portal's tables and dj-stripe's mirror do not."""
    stripe_emulator.emulator.reset()
    stripe_emulator.connect_webhooks()


def test_after_a_reset_stripe_setup_heals_and_upgrading_works(
    stripe_emulator, stripe_client, signed_in_client, membership, other_membership
):
    stripe_setup()
    customer = membership.customer
    end_trial(customer)
    upgrade(signed_in_client, stripe_emulator, "starter")
    stripe_emulator.deliver()
    old = CustomerPlan.objects.get(customer=customer)
    old_price = Plan.objects.get(code="pro").stripe_price_id
    old_stripe_customer = BillingInfo.objects.for_customer(customer).stripe_id
    assert old.status == "active" and PaymentMethod.objects.for_customer(customer).exists()

    stripe_reset(stripe_emulator)
    report = stripe_setup()

    # The plans point at the new account's prices, not at the mirror's rows of the old one.
    new_price = Plan.objects.get(code="pro").stripe_price_id
    assert new_price != old_price
    assert stripe_client.v1.prices.retrieve(new_price).lookup_key == "pro_monthly"
    # Links to objects the new account does not have are gone, and said so.
    assert f"Stripe customer {old_stripe_customer} not found" in report
    assert f"Subscription {old.subscription_id} not found" in report
    assert BillingInfo.objects.for_customer(customer) is None
    assert not PaymentMethod.objects.for_customer(customer).exists()
    assert CustomerPlan.objects.get(customer=customer).status == "canceled"
    kinds = set(Entry.objects.filter(customer=customer).values_list("kind", flat=True))
    assert {"stripe_customer_gone", "subscription_gone"} <= kinds
    assert not Entry.objects.filter(
        customer=other_membership.customer, kind__in=["stripe_customer_gone", "subscription_gone"]
    ).exists()

    page = upgrade(signed_in_client, stripe_emulator, "pro")
    assert "Welcome to Pro" in page.content.decode()
    stripe_emulator.deliver()
    plan = CustomerPlan.objects.get(customer=customer)
    assert (plan.plan.code, plan.status) == ("pro", "active")
    subscription = stripe_client.v1.subscriptions.retrieve(plan.subscription_id)
    assert subscription["items"].data[0].price.id == new_price
    new_stripe_customer = stripe_client.v1.customers.retrieve(subscription.customer)
    assert new_stripe_customer.id != old_stripe_customer
    assert new_stripe_customer.metadata["customer_id"] == customer.customer_id
    # A second run finds nothing more to repair.
    assert "not found" not in stripe_setup()


def test_a_plan_without_a_pushed_price_is_refused_with_a_clear_message(
    stripe_emulator, signed_in_client, membership
):
    stripe_setup()
    Plan.objects.filter(code="pro").update(stripe_price_id="")
    end_trial(membership.customer)
    page = signed_in_client.get(reverse("billing:plans"))
    response = signed_in_client.post(
        reverse("billing:plan_upgrade", args=["pro"]),
        {"attempt": page.context["attempt"]},
        follow=True,
    )
    assert response.status_code == 200
    assert "This plan cannot be bought right now." in response.content.decode()
