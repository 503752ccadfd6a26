"""No admin page errors: with data in every model the admin shows (ours through the
portal's flows, dj-stripe's mirror through the webhooks of the every-event-type journey,
and a stored row for each mirror model the emulator has no flow for), every changelist,
change page and allowed add page answers 200 to a superuser. The list of pages comes from
the admin's registry, so a newly registered model is swept too.

dj-stripe's models are read-only there and hidden from the index, except the webhook log."""

from decimal import Decimal

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.db import models
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from djstripe.models import Charge, Invoice

from accounts.members import invitation_create
from accounts.models import IdentityOrganization
from billing.events import events_reconcile
from billing.models import StripeEvent
from licensing.api.authentication import service_key_create
from licensing.licenses import license_refresh
from licensing.resources import resource_record
from licensing.services import usage_record
from licensing.spend import spend_cap_set
from outgoing.services import endpoint_create, outgoing_webhook_emit
from support.models import Erasure
from tests.accounts.factories import UserFactory
from tests.billing.test_every_event_type import back_office, portal_journey

CHANGE_PAGES_PER_MODEL = 30  # the newest and the oldest rows: every kind of event, not all


def _value_for(field: models.Field, model: type[models.Model]):
    if field.is_relation:
        related = field.related_model
        return related._default_manager.first() or mirror_row_create(related)
    if field.name == "id":
        return f"sweep_{model._meta.model_name}"
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, models.DecimalField):
        return Decimal(0)
    if isinstance(field, models.IntegerField | models.FloatField):
        return 0
    if isinstance(field, models.DateTimeField):
        return timezone.now()
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.UUIDField):
        return "00000000-0000-4000-8000-000000000000"
    if isinstance(field, models.GenericIPAddressField):  # dj-stripe's webhook log, now unused
        return "203.0.113.9"
    return field.choices[0][0] if field.choices else "sweep"


# What Stripe's objects of these kinds always carry and dj-stripe's pages read.
COMMON_KEYS = {"amount": 1000, "currency": "usd", "livemode": False, "metadata": {}}
KEYS = {
    "balancetransaction": {"status": "available", "type": "charge", "fee": 59, "net": 941},
    "dispute": {"status": "needs_response", "reason": "general"},
    "file": {"filename": "evidence.pdf", "purpose": "dispute_evidence", "size": 1024,
             "type": "pdf", "url": "https://files.example.com/v1/files/sweep"},
    "filelink": {"url": "https://files.example.com/links/sweep", "expired": False},
}  # fmt: skip


def mirror_row_create(model: type[models.Model]) -> models.Model:
    """A stored row of a dj-stripe model the emulator has no flow for (payouts, disputes,
    transfers, …): its required columns filled, its `stripe_data` the keys Stripe's object
    of that kind always has."""
    values = {
        field.name: _value_for(field, model)
        for field in model._meta.concrete_fields
        if not (
            isinstance(field, models.AutoField)
            or field.auto_created
            or field.has_default()
            or field.null
            or getattr(field, "auto_now_add", False)
            or getattr(field, "auto_now", False)
        )
    }
    name = model._meta.model_name
    shape = {**COMMON_KEYS, **KEYS.get(name, {})}
    if name == "balancetransaction":  # a charge's, as the journey's charges would have
        shape["source"] = Charge.objects.values_list("id", flat=True).first()
    columns = {f.name for f in model._meta.concrete_fields}
    values.update({key: value for key, value in shape.items() if key in values})
    if "stripe_data" in columns:
        values["stripe_data"] = {"id": values.get("id"), "object": name, **shape}
    return model._default_manager.create(**values)


@pytest.fixture
def every_model_has_data(
    signed_in_client, membership, other_membership, stripe_emulator, stripe_client
):
    portal_journey(signed_in_client, membership, stripe_emulator, stripe_client)
    back_office(stripe_emulator, stripe_client)
    service_key_create(name="Usage service")
    customer = membership.customer
    endpoint_create(url="http://127.0.0.1:9/")
    outgoing_webhook_emit(customer=customer, type="license.issued", data={"jti": "sweep"})
    spend_cap_set(customer=customer, feature=None, amount=100, thresholds=[50], mode="alert")
    usage_record(customer=customer, feature="api_calls", quantity=3, idempotency_key="sweep-1")
    resource_record(
        customer=customer, feature="projects", resource_id="proj_sweep", action="attach",
        idempotency_key="sweep-2",
    )  # fmt: skip
    license_refresh(customer=membership.customer)
    invitation_create(
        customer=customer, email="invited@example.com", role="member", invited_by=membership.user
    )
    IdentityOrganization.objects.create(org_id="org_sweep", customer=customer)
    events_reconcile()  # a pass of the reconcile, for its admin page
    Group.objects.get_or_create(name="Support")
    Erasure.objects.create(customer_id="cust_" + "0" * 32, erased_at=timezone.now())
    attempt = {"ip_address": "203.0.113.9", "username": "owner@example.com", "user_agent": "test"}
    AccessAttempt.objects.create(**attempt, failures_since_start=1, get_data="", post_data="")
    AccessFailureLog.objects.create(**attempt, locked_out=False)
    AccessLog.objects.create(**attempt)

    made_up = []
    for model in admin.site._registry:
        if not model._default_manager.exists():
            assert model._meta.app_label == "djstripe", f"no flow made a {model._meta.label}"
            mirror_row_create(model)
            made_up.append(model._meta.model_name)
    # The journey itself fills most of the mirror; these are what Stripe's other products make.
    assert {"customer", "invoice", "subscription", "paymentmethod", "taxid"}.isdisjoint(made_up)


@pytest.fixture
def superuser_client(client, db):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    client.user = user
    client.raise_request_exception = False  # a 500 is counted with its URL, not raised
    return client


def _change_pages(model: type[models.Model]) -> list[str]:
    manager = model._default_manager
    pks = list(manager.order_by("-pk").values_list("pk", flat=True)[:CHANGE_PAGES_PER_MODEL])
    pks += list(manager.order_by("pk").values_list("pk", flat=True)[:CHANGE_PAGES_PER_MODEL])
    opts = model._meta
    return [
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(pk)])
        for pk in dict.fromkeys(pks)
    ]


def test_every_admin_page_answers_200(every_model_has_data, superuser_client):
    request = RequestFactory().get("/admin/")
    request.user = superuser_client.user
    swept, failed = 0, []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        urls = [reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")]
        urls += _change_pages(model)
        if model_admin.has_add_permission(request):
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        for url in urls:
            response = superuser_client.get(url)
            swept += 1
            if response.status_code != 200:
                failed.append((url, response.status_code))
    assert failed == []
    assert swept > 2 * len(admin.site._registry)  # a change page or more for every model


def test_the_invoice_list_shows_paid_from_the_invoice_status(
    every_model_has_data, superuser_client
):
    paid = Invoice.objects.filter(stripe_data__status="paid").first()
    assert paid is not None
    page = superuser_client.get(reverse("admin:djstripe_invoice_changelist"))
    assert page.status_code == 200
    assert 'alt="True"' in page.content.decode()
    change = superuser_client.get(reverse("admin:djstripe_invoice_change", args=[paid.pk]))
    assert "Stripe data" in change.content.decode()  # what the typed properties would read
    assert paid.id in change.content.decode()


def test_djstripe_models_are_read_only_and_hidden(every_model_has_data, superuser_client):
    request = RequestFactory().get("/admin/")
    request.user = superuser_client.user
    mirror = {m: a for m, a in admin.site._registry.items() if m._meta.app_label == "djstripe"}
    assert len(mirror) > 30
    for model, model_admin in mirror.items():
        obj = model._default_manager.first()
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_change_permission(request, obj), model
        assert not model_admin.has_delete_permission(request, obj), model
        assert model_admin.get_actions(request) == {}, model
        assert model_admin.has_view_permission(request, obj), model

    index = superuser_client.get(reverse("admin:index"))
    listed = {
        model["object_name"]
        for app in index.context["app_list"]
        if app["app_label"] == "djstripe"
        for model in app["models"]
    }
    assert listed == set()
    assert "billing" in {app["app_label"] for app in index.context["app_list"]}

    # Not editable by a crafted POST either: the mirror stays Stripe's.
    invoice = Invoice.objects.first()
    url = reverse("admin:djstripe_invoice_change", args=[quote(invoice.pk)])
    assert superuser_client.post(url, {"id": "in_edited"}).status_code == 403
    delete = reverse("admin:djstripe_invoice_delete", args=[quote(invoice.pk)])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    assert Invoice.objects.filter(pk=invoice.pk).exists()
    assert superuser_client.get(reverse("admin:djstripe_invoice_add")).status_code == 403
    # What Stripe sent, and how its processing went, is the portal's own list.
    log = superuser_client.get(reverse("admin:billing_stripeevent_changelist"))
    assert log.status_code == 200
    assert StripeEvent.objects.count() > 0
