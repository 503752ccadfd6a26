import dataclasses
from io import StringIO

import pytest
from django.core.management import call_command
from djstripe.models import Product, WebhookEndpoint

from billing import webhooks
from billing.setup import catalog_push
from billing.webhook_events import WEBHOOK_EVENTS
from licensing.catalog import catalog_read
from licensing.models import Plan


@pytest.fixture
def fresh_portal(stripe_emulator):
    """A portal that has never run stripe_setup (the fixture's own endpoint forgotten)."""
    WebhookEndpoint.objects.all().delete()
    return stripe_emulator


def stripe_setup() -> str:
    out = StringIO()
    call_command("stripe_setup", stdout=out)
    return out.getvalue()


def test_registers_the_webhook_endpoint_once(fresh_portal, stripe_client, settings):
    settings.PORTAL_BASE_URL = "https://billing.example.com"
    before = {e.id for e in stripe_client.v1.webhook_endpoints.list().data}

    assert "created" in stripe_setup()
    assert "unchanged" in stripe_setup()

    [new] = [e for e in stripe_client.v1.webhook_endpoints.list().data if e.id not in before]
    local = WebhookEndpoint.objects.get(id=new.id)
    assert new.url == f"https://billing.example.com/stripe/webhook/{local.djstripe_uuid}/"
    assert local.secret.startswith("whsec_")
    assert "invoice.paid" in new.enabled_events


def test_an_endpoint_deleted_at_stripe_is_registered_again(fresh_portal, stripe_client):
    stripe_setup()
    [local] = WebhookEndpoint.objects.all()
    stripe_client.v1.webhook_endpoints.delete(local.id)

    assert "created" in stripe_setup()
    [again] = WebhookEndpoint.objects.all()
    assert again.id != local.id
    assert stripe_client.v1.webhook_endpoints.retrieve(again.id).url == again.url


def test_follows_a_new_base_url_keeping_the_secret(fresh_portal, stripe_client, settings):
    settings.PORTAL_BASE_URL = "https://old.example.com"
    stripe_setup()
    settings.PORTAL_BASE_URL = "https://new.example.com"

    assert "updated" in stripe_setup()
    local = WebhookEndpoint.objects.get(url__startswith="https://new.example.com")
    remote = stripe_client.v1.webhook_endpoints.retrieve(local.id)
    assert remote.url == local.url
    assert local.secret.startswith("whsec_")


def test_without_billing_it_loads_the_catalog_locally_only(db):
    assert "nothing sent" in stripe_setup()
    assert Plan.objects.filter(code="pro", amount=4900).exists()
    assert not WebhookEndpoint.objects.exists()


def test_the_catalog_push_twice_makes_nothing_new(fresh_portal):
    stripe_setup()
    counts = fresh_portal.emulator_counts()
    second = stripe_setup()
    assert fresh_portal.emulator_counts() == counts
    assert "created" not in second and "new price" not in second
    assert counts["product"] == 3
    assert counts["price"] == 3


def test_a_changed_amount_makes_a_new_price_and_moves_the_lookup_key(
    fresh_portal, stripe_client, tmp_path
):
    stripe_setup()
    catalog = catalog_read()
    pro = catalog.plan("pro")
    changed = dataclasses.replace(
        catalog, plans=tuple(
            dataclasses.replace(p, amount=5900) if p.code == "pro" else p for p in catalog.plans
        )
    )  # fmt: skip
    catalog_push(catalog=changed)

    prices = stripe_client.v1.prices.list({"product": pro.product_id}).data
    by_amount = {p.unit_amount: p for p in prices}
    assert by_amount[5900].lookup_key == "pro_monthly" and by_amount[5900].active
    assert by_amount[4900].lookup_key is None and not by_amount[4900].active
    assert Plan.objects.get(code="pro").amount == 5900
    assert Plan.objects.get(code="pro").stripe_price_id == by_amount[5900].id


def test_new_events_reach_an_existing_endpoint(fresh_portal, stripe_client, settings):
    stripe_setup()
    [local] = WebhookEndpoint.objects.all()
    stripe_client.v1.webhook_endpoints.update(local.id, {"enabled_events": ["invoice.paid"]})

    assert "updated" in stripe_setup()
    remote = stripe_client.v1.webhook_endpoints.retrieve(local.id)
    assert sorted(remote.enabled_events) == sorted(WEBHOOK_EVENTS)
    local.refresh_from_db()
    assert sorted(local.enabled_events) == sorted(WEBHOOK_EVENTS)
    assert "unchanged" in stripe_setup()


def test_the_endpoint_is_subscribed_to_what_the_portal_handles_and_no_more(
    fresh_portal, stripe_client
):
    stripe_setup()
    [local] = WebhookEndpoint.objects.all()
    remote = stripe_client.v1.webhook_endpoints.retrieve(local.id)
    assert sorted(remote.enabled_events) == sorted(WEBHOOK_EVENTS)
    assert "*" not in remote.enabled_events


def test_every_event_our_receivers_handle_is_subscribed_to():
    """A reaction added in billing/webhooks.py without its event in WEBHOOK_EVENTS would
    never run; an entry dj-stripe does not know is a typo."""
    from djstripe.signals import WEBHOOK_SIGNALS

    ours = set(webhooks.REACTIONS)
    assert "checkout.session.completed" in ours
    assert ours <= set(WEBHOOK_EVENTS)
    assert set(WEBHOOK_EVENTS) <= set(WEBHOOK_SIGNALS)
    assert len(WEBHOOK_EVENTS) == len(set(WEBHOOK_EVENTS))


def test_mirroring_a_product_fetches_its_features_outside_the_transaction(fresh_portal, caplog):
    # dj-stripe asks for a product's features inside its own transaction and goes on
    # without them when the request fails: the mirror makes the request itself and mirrors
    # again, with nothing logged for it.
    stripe_setup()
    products = sorted(Product.objects.values_list("id", flat=True))
    assert len(products) == 3
    asked = [path for method, path in fresh_portal.http.requests if method == "GET"]
    assert sorted(p for p in asked if p.endswith("/features")) == [
        f"/v1/products/{product}/features" for product in products
    ]
    assert not [r for r in caplog.records if "product features" in r.getMessage()]
