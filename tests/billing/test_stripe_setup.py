from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from djstripe.models import WebhookEndpoint


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


def test_refuses_to_run_without_billing(db):
    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        stripe_setup()
