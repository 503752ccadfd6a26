"""Missed webhooks are recovered: with the webhook endpoint failing for a whole journey,
one reconcile pass over Stripe's events list ends in the state uninterrupted delivery
gives; a second pass repairs nothing; staff see the cursor, the lag and the repairs."""

import pytest
from django.urls import reverse

from billing.cards import billing_info_ensure
from billing.events import events_reconcile
from billing.models import EventReconcile, PaymentMethod, StripeEvent
from billing.setup import catalog_push
from licensing.catalog import catalog_read
from licensing.models import CustomerPlan, License

pytestmark = pytest.mark.django_db(transaction=True)


def journey(stripe_emulator, stripe_client, membership) -> str:
    """A card added at Stripe, Starter, then Pro, then set to end at the period's end.
    Each step's webhooks are sent (and fail, while the endpoint is down)."""
    stripe_id = billing_info_ensure(customer=membership.customer, email="o@example.com").stripe_id
    card = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_id})
    stripe_client.v1.customers.update(
        stripe_id, {"invoice_settings": {"default_payment_method": card.id}}
    )
    stripe_emulator.deliver()
    prices = {p.lookup_key: p.id for p in stripe_client.v1.prices.list({"limit": 100}).data}
    subscription = stripe_client.v1.subscriptions.create(
        {
            "customer": stripe_id,
            "items": [{"price": prices["starter_monthly"]}],
            "metadata": {"customer_id": membership.customer.customer_id},
        }
    )
    stripe_emulator.deliver()
    stripe_client.v1.subscriptions.update(
        subscription.id,
        {
            "items": [{"id": subscription["items"].data[0].id, "price": prices["pro_monthly"]}],
            "proration_behavior": "none",
        },
    )
    stripe_emulator.deliver()
    stripe_client.v1.subscriptions.update(subscription.id, {"cancel_at_period_end": True})
    stripe_emulator.deliver()
    return subscription.id


def state(customer) -> tuple:
    plan = CustomerPlan.objects.select_related("plan").get(customer=customer)
    license = License.objects.get(customer=customer, revoked_at__isnull=True)
    cards = PaymentMethod.objects.for_customer(customer).count()
    return (plan.plan.code, plan.status, plan.cancel_at_period_end, cards, license.plan_code)


def test_one_reconcile_pass_recovers_a_journey_whose_webhooks_all_failed(
    stripe_emulator, stripe_client, membership, other_membership, admin_client
):
    catalog_push(catalog=catalog_read())
    stripe_emulator.deliver()
    journey(stripe_emulator, stripe_client, other_membership)  # delivered as it happens
    uninterrupted = state(other_membership.customer)

    stripe_emulator.endpoint_down = True
    journey(stripe_emulator, stripe_client, membership)
    assert 503 in stripe_emulator.webhook_statuses
    assert not CustomerPlan.objects.filter(customer=membership.customer).exists()

    run = events_reconcile()

    assert run.repaired > 0 and not run.error
    assert state(membership.customer) == uninterrupted == ("pro", "active", True, 1, "pro")
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert events_reconcile().repaired == 0  # the overlap lists them again: nothing to do

    page = admin_client.get(reverse("admin:billing_stripeevent_changelist")).content.decode()
    assert f"{run.listed} listed, 0 repaired" in page  # the last pass
    assert "Reconcile cursor: " in page and "behind now" in page
    runs = admin_client.get(reverse("admin:billing_eventreconcile_changelist")).content.decode()
    assert f'<td class="field-repaired">{run.repaired}</td>' in runs
    assert EventReconcile.objects.count() == 2


def test_beat_runs_the_reconcile(settings):
    from billing.tasks import events_reconcile as reconcile_task

    schedule = settings.CELERY_BEAT_SCHEDULE["stripe-events-reconcile"]
    assert schedule["task"] == reconcile_task.name
    assert schedule["schedule"] <= 15 * 60
