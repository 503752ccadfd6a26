"""Overlapping deliveries: each step of a plan journey made at Stripe, then its events posted
by concurrent threads, each event twice, in a shuffled order. Every permutation ends in the
projection Stripe has, with each email once (per-object ordering: a sync fetches only once
no other sync of the object runs, so an older snapshot never lands over a newer one)."""

import json
import random
import re
import threading
import time
from collections import Counter

import pytest
import stripe
from django.core import mail
from django.db import connection
from django.test import Client

from billing.cards import billing_info_ensure
from billing.models import StripeEvent
from billing.setup import catalog_push
from licensing.catalog import catalog_read
from licensing.models import CustomerPlan

pytestmark = pytest.mark.django_db(transaction=True)  # each thread commits for real

PERMUTATIONS = 20


def signed(event: dict, secret: str) -> tuple[str, str]:
    body = json.dumps(event, default=str)
    timestamp = int(time.time())
    digest = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body}", secret)
    return body, f"t={timestamp},v1={digest}"


def deliver_concurrently(stripe_emulator, events: list[dict], rng: random.Random) -> None:
    from djstripe.models import WebhookEndpoint

    secret = WebhookEndpoint.objects.get(djstripe_uuid=stripe_emulator.uuid).secret
    deliveries = [signed(event, secret) for event in events] * 2
    rng.shuffle(deliveries)
    barrier = threading.Barrier(len(deliveries))
    statuses = []

    def post(body: str, signature: str) -> None:
        try:
            barrier.wait()
            response = Client().post(
                f"/stripe/webhook/{stripe_emulator.uuid}/",
                data=body,
                content_type="application/json",
                headers={"Stripe-Signature": signature},
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=delivery) for delivery in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(deliveries)


def projection(customer) -> tuple:
    plan = CustomerPlan.objects.select_related("plan").get(customer=customer)
    return (plan.plan.code, plan.status, plan.cancel_at_period_end, plan.current_period_end)


def stripe_projection(stripe_client, subscription_id: str) -> tuple:
    from datetime import UTC, datetime

    subscription = stripe_client.v1.subscriptions.retrieve(subscription_id)
    item = subscription["items"].data[0]
    return (
        item.price.product.removeprefix("plan_"),
        subscription.status,
        subscription.cancel_at_period_end,
        datetime.fromtimestamp(item.current_period_end, UTC),
    )


@pytest.mark.parametrize("seed", range(PERMUTATIONS))
def test_overlapping_deliveries_converge_with_each_email_once(
    seed, stripe_emulator, stripe_client, membership, other_membership
):
    catalog_push(catalog=catalog_read())
    rng = random.Random(seed)
    customer = membership.customer
    billing_info = billing_info_ensure(customer=customer, email="owner@example.com")
    stripe_id = billing_info.stripe_id
    card = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_id})
    stripe_client.v1.customers.update(
        stripe_id, {"invoice_settings": {"default_payment_method": card.id}}
    )
    prices = {p.lookup_key: p.id for p in stripe_client.v1.prices.list({"limit": 100}).data}
    seen: set[str] = set()

    def step() -> None:
        fresh = [
            event.to_dict()
            for event in stripe_client.v1.events.list({"limit": 100}).auto_paging_iter()
            if event.id not in seen
        ]
        seen.update(event["id"] for event in fresh)
        deliver_concurrently(stripe_emulator, fresh, rng)

    subscription = stripe_client.v1.subscriptions.create(
        {
            "customer": stripe_id,
            "items": [{"price": prices["starter_monthly"]}],
            "metadata": {"customer_id": customer.customer_id},
        }
    )
    step()
    assert projection(customer)[:2] == ("starter", "active")
    item = subscription["items"].data[0].id
    stripe_client.v1.subscriptions.update(
        subscription.id,
        {"items": [{"id": item, "price": prices["pro_monthly"]}], "proration_behavior": "none"},
    )
    step()
    for cancel in (True, False, True):
        stripe_client.v1.subscriptions.update(subscription.id, {"cancel_at_period_end": cancel})
        step()
    stripe_client.v1.subscriptions.cancel(subscription.id)
    step()

    assert projection(customer) == stripe_projection(stripe_client, subscription.id)
    assert not CustomerPlan.objects.filter(customer=other_membership.customer).exists()
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    counts = Counter(re.sub(r" on \d.*$", "", message.subject) for message in mail.outbox)
    assert counts == {
        "Your Starter plan is active": 1,
        "You are now on the Pro plan": 1,
        "Your Pro plan will end": 2,
        "Your Pro plan has ended": 1,
        "Your Billing Portal license (Starter)": 1,
        "Your Billing Portal license (Pro)": 1,
        # Back on the portal's trial (it has not ended) once the plan has.
        "Your Billing Portal license (Trial)": 1,
    }


def test_an_older_snapshot_never_lands_over_a_newer_one(
    stripe_emulator, stripe_client, membership, monkeypatch
):
    """The race of the issue, made certain: a sync's fetch answers late with the old state,
    Stripe changes meanwhile, and a second sync runs. The second only asks the first to go
    again, so the plan ends as Stripe has it, not as the late answer said."""
    from billing import gateway, plans

    catalog_push(catalog=catalog_read())
    stripe_id = billing_info_ensure(customer=membership.customer, email="o@example.com").stripe_id
    card = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_id})
    stripe_client.v1.customers.update(
        stripe_id, {"invoice_settings": {"default_payment_method": card.id}}
    )
    prices = {p.lookup_key: p.id for p in stripe_client.v1.prices.list({"limit": 100}).data}
    subscription = stripe_client.v1.subscriptions.create(
        {
            "customer": stripe_id,
            "items": [{"price": prices["starter_monthly"]}],
            "metadata": {"customer_id": membership.customer.customer_id},
        }
    )
    plans.subscription_sync(subscription_id=subscription.id)

    real_retrieve = gateway.subscription_retrieve
    fetched, late_answer_may_go = threading.Event(), threading.Event()
    products = []

    def retrieve_first_one_late(*, subscription_id):
        snapshot = real_retrieve(subscription_id=subscription_id)
        products.append(snapshot["items"]["data"][0]["price"]["product"])
        if len(products) == 1:
            fetched.set()
            late_answer_may_go.wait(5)
        return snapshot

    monkeypatch.setattr(gateway, "subscription_retrieve", retrieve_first_one_late)

    def sync() -> None:
        try:
            plans.subscription_sync(subscription_id=subscription.id)
        finally:
            connection.close()

    first = threading.Thread(target=sync)
    first.start()
    assert fetched.wait(5)
    stripe_client.v1.subscriptions.update(
        subscription.id,
        {
            "items": [{"id": subscription["items"].data[0].id, "price": prices["pro_monthly"]}],
            "proration_behavior": "none",
        },
    )
    second = threading.Thread(target=sync)
    second.start()
    second.join(5)
    late_answer_may_go.set()
    first.join(5)

    assert products == ["plan_starter", "plan_pro"]  # the first went again, after the change
    assert projection(membership.customer)[:2] == ("pro", "active")
    subjects = [message.subject for message in mail.outbox]
    assert sum("You are now on the Pro plan" in subject for subject in subjects) == 1
