# ruff: noqa: F811 - `catalog` is a fixture imported from tests/licensing
"""Outgoing webhooks: signed so the README's snippet verifies them, delivered after the
commit, retried with backoff when an endpoint fails or hangs, every attempt in the log, and
emitted once by the changes that trigger them."""

import json
import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from licensing.licenses import license_refresh
from licensing.models import CustomerPlan, Plan
from licensing.services import customer_plan_apply
from outgoing import services
from outgoing.models import Attempt, Delivery, Endpoint, Event, EventType
from outgoing.services import outgoing_delivery_attempt, outgoing_webhook_emit
from tests.licensing.conftest import catalog  # noqa: F401 - fixture

NOW = datetime(2026, 4, 15, 12, tzinfo=UTC)
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_snippet():
    """The README's verification snippet, exactly as written there, run as a module."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (snippet,) = [b for b in blocks if "def verify_portal_signature" in b]
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify_portal_signature"]


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def endpoint(receiver, db):
    return Endpoint.objects.create(url=receiver.url, description="entitlement service")


def emit(customer, django_capture_on_commit_callbacks, type=EventType.LICENSE_ISSUED, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return outgoing_webhook_emit(customer=customer, type=type, data=data or {"x": 1})


def test_a_delivery_verifies_with_the_readme_snippet(
    membership, other_membership, endpoint, receiver, django_capture_on_commit_callbacks
):
    """Must show 4 (first half): the documented snippet verifies what was sent."""
    verify = readme_snippet()
    event = emit(membership.customer, django_capture_on_commit_callbacks, plan="pro")
    ((headers, body),) = receiver.received
    signature = headers["Billing-Portal-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    assert verify(body, signature, endpoint.secret) is True
    payload = json.loads(body)
    assert payload == {
        "id": event.event_id, "type": "license.issued", "created": int(NOW.timestamp()),
        "customer_id": membership.customer.customer_id, "data": {"plan": "pro"},
    }  # fmt: skip
    # What the snippet refuses: another secret, a changed body, a stale or missing time.
    assert verify(body, signature, "whsec_other") is False
    assert verify(body.replace(b"pro", b"biz"), signature, endpoint.secret) is False
    with time_machine.travel(NOW + timedelta(minutes=6), tick=False):
        assert verify(body, signature, endpoint.secret) is False
    assert verify(body, signature.split(",")[1], endpoint.secret) is False
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED
    # Each endpoint its own secret.
    assert Endpoint.objects.create(url=receiver.url).secret != endpoint.secret


def test_nothing_is_sent_when_the_change_rolls_back(
    membership, endpoint, receiver, django_capture_on_commit_callbacks
):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                outgoing_webhook_emit(customer=membership.customer, type="license.issued", data={})
                raise RuntimeError("the change failed")
        except RuntimeError:
            pass
    assert receiver.received == []
    assert not Event.objects.exists()


def test_a_failing_endpoint_is_retried_with_backoff_and_the_log_shows_each_attempt(
    membership, endpoint, receiver, admin_client
):
    """Must show 4 (second half)."""
    receiver.answers = [500, 503, 200]
    event = outgoing_webhook_emit(customer=membership.customer, type="license.issued", data={})
    delivery = Delivery.objects.get(event=event)
    assert outgoing_delivery_attempt(delivery_id=delivery.pk) == 60
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == NOW + timedelta(seconds=60)
    with time_machine.travel(NOW + timedelta(seconds=60), tick=False):
        assert outgoing_delivery_attempt(delivery_id=delivery.pk) == 300
    with time_machine.travel(NOW + timedelta(seconds=360), tick=False):
        assert outgoing_delivery_attempt(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SUCCEEDED, 3)
    log = list(delivery.attempt_log.values_list("number", "status_code", "attempted_at"))
    assert log == [
        (1, 500, NOW),
        (2, 503, NOW + timedelta(seconds=60)),
        (3, 200, NOW + timedelta(seconds=360)),
    ]
    # The same event, byte for byte, each time (receivers dedupe by its id).
    assert len({body for _headers, body in receiver.received}) == 1
    # The delivery log in the admin, read-only.
    page = admin_client.get(reverse("admin:outgoing_delivery_change", args=[delivery.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    cells = re.findall(r'field-status_code">\s*<p>(\d+)</p>', html)
    assert cells == ["500", "503", "200"], cells
    assert 'name="_save"' not in html
    assert admin_client.get(reverse("admin:outgoing_delivery_add")).status_code == 403


def test_an_endpoint_that_times_out_is_logged_and_retried(
    membership, endpoint, receiver, monkeypatch
):
    monkeypatch.setattr(services, "TIMEOUT_SECONDS", 0.2)
    receiver.delay = 1.0
    event = outgoing_webhook_emit(customer=membership.customer, type="license.issued", data={})
    delivery = Delivery.objects.get(event=event)
    assert outgoing_delivery_attempt(delivery_id=delivery.pk) == 60
    attempt = Attempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert "timed out" in attempt.error.lower()
    assert Delivery.objects.get().status == Delivery.Status.PENDING


def test_an_endpoint_that_always_fails_gets_eight_attempts_then_is_given_up(
    membership, endpoint, receiver, django_capture_on_commit_callbacks
):
    receiver.answers = [500]
    emit(membership.customer, django_capture_on_commit_callbacks)  # eager: every retry runs now
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.GAVE_UP, 8)
    assert list(delivery.attempt_log.values_list("status_code", flat=True)) == [500] * 8
    assert sum(services.RETRY_DELAYS) >= 23 * 3600  # about a day of retries


def test_a_redirect_is_logged_and_retried_not_followed(membership, endpoint, receiver):
    receiver.answers = [302, 200]
    outgoing_webhook_emit(customer=membership.customer, type="license.issued", data={})
    delivery = Delivery.objects.get()
    assert outgoing_delivery_attempt(delivery_id=delivery.pk) == 60
    assert Attempt.objects.get().status_code == 302
    assert len(receiver.received) == 1  # nothing was sent anywhere else


def test_a_refused_connection_is_retried_not_raised(membership, db):
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/nothing-listens")
    outgoing_webhook_emit(customer=membership.customer, type="license.issued", data={})
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert outgoing_delivery_attempt(delivery_id=delivery.pk) == 60
    assert Attempt.objects.get().error


def test_an_endpoint_gets_only_the_types_it_asked_for(membership, receiver, db):
    wants = Endpoint.objects.create(url=receiver.url, event_types=["invoice.finalized"])
    outgoing_webhook_emit(customer=membership.customer, type="license.issued", data={})
    assert not Delivery.objects.filter(endpoint=wants).exists()
    outgoing_webhook_emit(customer=membership.customer, type="invoice.finalized", data={})
    assert Delivery.objects.filter(endpoint=wants).count() == 1
    with pytest.raises(ValueError, match="Not an outgoing event type"):
        outgoing_webhook_emit(customer=membership.customer, type="nope", data={})


def test_the_sweep_sends_a_delivery_whose_retry_was_lost(membership, endpoint, receiver):
    receiver.answers = [500, 200]
    outgoing_webhook_emit(customer=membership.customer, type="license.issued", data={})
    delivery = Delivery.objects.get()
    outgoing_delivery_attempt(delivery_id=delivery.pk)  # its retry task is then lost
    assert services.outgoing_deliveries_resume() == 0  # not overdue yet
    with time_machine.travel(NOW + timedelta(minutes=12), tick=False):
        assert services.outgoing_deliveries_resume() == 1  # eager: sent now
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED


# --- The events, from their triggers ------------------------------------------------------


def types_sent() -> list[str]:
    return list(Event.objects.order_by("created_at", "event_id").values_list("type", flat=True))


def test_a_new_license_emits_license_issued_and_entitlements_changed_once(
    membership,
    other_membership,
    catalog,
    endpoint,
):
    customer = membership.customer
    license_refresh(customer=customer)
    assert sorted(types_sent()) == ["customer.entitlements_changed", "license.issued"]
    changed = Event.objects.get(type="customer.entitlements_changed")
    assert changed.data["entitlements"]["plan"] == "trial"
    assert changed.data["entitlements"]["features"]["api_calls"]["limit"] == 1000
    license_refresh(customer=customer)  # nothing changed: no license, no event
    assert Event.objects.count() == 2
    assert not Event.objects.filter(customer=other_membership.customer).exists()

    now = timezone.now()
    customer_plan_apply(
        customer=customer, plan=Plan.objects.get(code="pro"), status="active",
        current_period_start=now, current_period_end=now + timedelta(days=30),
        cancel_at_period_end=False, subscription_id="sub_1",
    )  # fmt: skip
    changed = Event.objects.filter(type="customer.entitlements_changed")
    assert changed.count() == 2
    (to_pro,) = [e for e in changed if e.data["entitlements"]["plan"] == "pro"]
    assert to_pro.data["previous"]["plan"] == "trial"
    assert to_pro.data["entitlements"]["features"]["sso"] is True


def test_becoming_past_due_emits_payment_failed_once(membership, catalog, endpoint):
    customer = membership.customer
    now = timezone.now()
    state = {
        "customer": customer, "plan": Plan.objects.get(code="pro"),
        "current_period_start": now, "current_period_end": now + timedelta(days=30),
        "cancel_at_period_end": False, "subscription_id": "sub_1",
    }  # fmt: skip
    customer_plan_apply(status="active", **state)
    customer_plan_apply(status="past_due", **state)
    customer_plan_apply(status="past_due", **state)  # a retry's webhook: still past due
    (failed,) = Event.objects.filter(type="payment.failed")
    assert failed.data["plan"] == "pro"
    assert failed.data["grace_ends_at"] == (now + timedelta(days=7)).isoformat()
    assert CustomerPlan.objects.get(customer=customer).status == "past_due"


def test_a_finalized_renewal_emits_invoice_finalized_once(membership, catalog, endpoint):
    from billing.invoice_sync import invoice_finalized_record
    from billing.models import Invoice

    customer = membership.customer
    start = NOW - timedelta(days=30)
    invoice = Invoice.objects.create(
        customer=customer, plan=Plan.objects.get(code="pro"), currency="eur",
        period_start=start, period_end=NOW, subscription_id="sub_1",
    )  # fmt: skip
    stripe_invoice = {
        "id": "in_1", "billing_reason": "subscription_cycle", "number": "ACME-0001",
        "total": 4900, "period_start": int(start.timestamp()),
        "status_transitions": {"finalized_at": int(NOW.timestamp())},
        "parent": {"subscription_details": {"subscription": "sub_1"}},
        "hosted_invoice_url": "https://invoice.example/in_1",
    }  # fmt: skip
    invoice_finalized_record(stripe_invoice=stripe_invoice)
    invoice_finalized_record(stripe_invoice=stripe_invoice)  # a duplicate delivery
    (finalized,) = Event.objects.filter(type="invoice.finalized")
    assert finalized.data["invoice_id"] == invoice.pk
    assert (finalized.data["number"], finalized.data["total"]) == ("ACME-0001", 4900)


# --- Registering endpoints --------------------------------------------------------------


def test_the_command_registers_an_endpoint_and_prints_its_secret(db):
    out = StringIO()
    call_command(
        "outgoing_webhook_endpoint_add", "https://svc.example/hooks", "--event", "license.issued",
        stdout=out,
    )  # fmt: skip
    endpoint = Endpoint.objects.get()
    assert endpoint.event_types == ["license.issued"]
    assert endpoint.secret.startswith("whsec_") and endpoint.secret in out.getvalue()
    with pytest.raises(CommandError, match="Not an http"):
        call_command("outgoing_webhook_endpoint_add", "ftp://nope")
    with pytest.raises(CommandError):
        call_command("outgoing_webhook_endpoint_add", "https://x.example", "--event", "bogus")
    assert Endpoint.objects.count() == 1


def test_staff_register_an_endpoint_in_the_admin(admin_client, db):
    response = admin_client.post(
        reverse("admin:outgoing_endpoint_add"),
        {"url": "https://svc.example/hooks", "description": "svc", "event_types": "[]",
         "is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    assert Endpoint.objects.get().secret.startswith("whsec_")


@pytest.mark.parametrize("types", ['"license.issued"', '["license.issued", "nope"]', "{}"])
def test_the_admin_refuses_event_types_that_are_not_a_list_of_known_ones(admin_client, types):
    response = admin_client.post(
        reverse("admin:outgoing_endpoint_add"),
        {"url": "https://svc.example/hooks", "event_types": types, "is_active": "on"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["event_types"]
    assert not Endpoint.objects.exists()
