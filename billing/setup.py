"""Setting Stripe up for this portal: the plan catalog (products and prices) and the
webhook endpoint. Both idempotent; run by `manage.py stripe_setup`."""

import uuid

from django.conf import settings
from django.urls import reverse
from djstripe.models import WebhookEndpoint

from licensing.catalog import Catalog
from licensing.services import catalog_load

from . import gateway, mirror
from .webhook_events import WEBHOOK_EVENTS


def webhook_endpoint_ensure(*, base_url: str) -> tuple[WebhookEndpoint, str]:
    """Stripe sends its events to this portal's dj-stripe URL, with a secret dj-stripe
    knows. Idempotent: returns the endpoint and what was done (created, updated, unchanged)."""
    for local in WebhookEndpoint.objects.filter(livemode=settings.STRIPE_LIVE_MODE):
        expected = base_url + reverse(
            "djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": local.djstripe_uuid}
        )
        remote = gateway.webhook_endpoint_retrieve(endpoint_id=local.id)
        if remote is None:
            local.delete()  # gone at Stripe (an emulator reset, a dashboard deletion)
            continue
        if (
            remote["url"] == expected
            and remote["status"] == "enabled"
            and sorted(remote["enabled_events"]) == sorted(WEBHOOK_EVENTS)
        ):
            return local, "unchanged"
        remote = gateway.webhook_endpoint_update(endpoint_id=local.id, url=expected)
        remote["secret"] = local.secret  # Stripe shows the secret only once
        return WebhookEndpoint.sync_from_stripe_data(remote), "updated"

    djstripe_uuid = str(uuid.uuid4())
    url = base_url + reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": djstripe_uuid})
    remote = gateway.webhook_endpoint_create(url=url, djstripe_uuid=djstripe_uuid)
    return WebhookEndpoint.sync_from_stripe_data(remote), "created"


def catalog_push(*, catalog: Catalog) -> list[str]:
    """Push the sold plans to Stripe (a product each, a monthly price found by its lookup
    key), then load the catalog into our tables. Idempotent: a second run creates nothing.
    A changed amount makes a new price and moves the lookup key to it."""
    report = []
    price_ids = {}
    for plan in catalog.plans:
        if not plan.is_sold:
            continue
        outcome = gateway.product_ensure(
            product_id=plan.product_id, name=plan.name, plan_code=plan.code
        )
        price = gateway.price_for_lookup_key(lookup_key=plan.lookup_key)
        unchanged = price is not None and (
            price["unit_amount"] == plan.amount
            and price["currency"] == plan.currency
            and price["product"] == plan.product_id
            and price["active"]
        )
        changed = (
            [price]
            if unchanged
            else gateway.price_create_monthly(
                product_id=plan.product_id,
                amount=plan.amount,
                currency=plan.currency,
                lookup_key=plan.lookup_key,
                replaces=price["id"] if price else None,
            )
        )
        for changed_price in changed:
            mirror.price_mirror(changed_price)
        price_ids[plan.code] = changed[0]["id"]
        report.append(
            f"{plan.code}: product {plan.product_id} {outcome}, price {changed[0]['id']} "
            f"{'unchanged' if unchanged else 'created'}"
        )
    catalog_load(catalog=catalog, price_ids=price_ids)
    return report
