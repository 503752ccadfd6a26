"""Support actions through the emulator: each one POST with a reason, one audit entry
naming the staff member with before, after and Stripe's request ids; refusals and
Stripe failures leave everything as it was."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import Entry
from billing.cards import billing_info_ensure
from billing.models import StripeEvent
from billing.setup import catalog_push
from licensing.catalog import catalog_read
from licensing.entitlements import check_access
from licensing.models import CustomerPlan, License
from licensing.services import catalog_load
from tests.billing.test_cards import add_card
from tests.billing.test_plans import end_trial, upgrade


def act(client, customer, name, **data):
    url = reverse("support:action", args=[customer.customer_id, name])
    return client.post(url, data)


def staff_entries(customer, staff):
    return list(Entry.objects.filter(customer=customer, actor=staff).order_by("id"))


def current_license(customer) -> License:
    return License.objects.get(customer=customer, revoked_at__isnull=True)


@pytest.fixture
def catalog(stripe_emulator):
    catalog_push(catalog=catalog_read())


@pytest.fixture
def catalog_loaded(db):
    catalog_load(catalog=catalog_read())


@pytest.fixture
def subscribed(signed_in_client, membership, other_membership, stripe_emulator, stripe_client,
               catalog):  # fmt: skip
    """Acme on Starter, paid with a Visa, on a test clock of its own."""
    clock = stripe_client.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
    stripe_client.v1.customers.create(
        {
            "email": "owner@example.com",
            "test_clock": clock.id,
            "metadata": {"customer_id": membership.customer.customer_id},
        }
    )
    billing_info_ensure(customer=membership.customer, email="owner@example.com")
    end_trial(membership.customer)
    upgrade(signed_in_client, stripe_emulator, "starter")
    stripe_emulator.deliver()
    assert CustomerPlan.objects.get(customer=membership.customer).status == "active"
    customer = membership.customer
    customer.clock = clock
    return customer


def test_extending_the_trial_writes_one_entry_with_the_reason(
    membership, other_membership, support_client
):
    customer = membership.customer
    before = customer.trial_ends_at
    old_license = None
    from licensing.licenses import license_refresh

    license_refresh(customer=customer)
    old_license = current_license(customer)
    new_end = (before + timedelta(days=10)).date()
    response = act(
        support_client, customer, "trial_extend",
        trial_ends_on=new_end.isoformat(), reason="customer asked for more time",
    )  # fmt: skip
    assert response.status_code == 302
    [entry] = staff_entries(customer, support_client.user)
    assert entry.kind == "support_trial_extend"
    assert entry.sentence == (
        f"Trial extended to {new_end:%-d %B %Y} by support@example.com: customer asked for "
        "more time"
    )
    assert entry.data["reason"] == "customer asked for more time"
    assert entry.data["before"]["trial_ends_at"] == before.isoformat()
    assert entry.data["after"]["trial_ends_at"].startswith(new_end.isoformat())
    assert entry.data["changed"] == ["license", "trial_ends_at"]
    assert entry.data["stripe_request_ids"] == []
    customer.refresh_from_db()
    assert customer.trial_ends_at.date() == new_end
    assert current_license(customer).jti != old_license.jti
    # No other entry names the staff member (the license's is the system's).
    assert Entry.objects.filter(actor=support_client.user).count() == 1
    page = support_client.get(reverse("support:customer", args=[customer.pk])).content.decode()
    assert entry.sentence in page


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_action_without_a_reason_is_refused_with_a_form_error(
    membership, support_client, reason
):
    customer = membership.customer
    before = customer.trial_ends_at
    response = act(
        support_client, customer, "trial_extend",
        trial_ends_on=(before + timedelta(days=10)).date().isoformat(), reason=reason,
    )  # fmt: skip
    assert response.status_code == 400
    assert "Say why" in response.content.decode()
    assert Entry.objects.filter(actor=support_client.user).count() == 0
    customer.refresh_from_db()
    assert customer.trial_ends_at == before


def test_a_trial_end_in_the_past_is_refused(membership, support_client):
    customer = membership.customer
    response = act(
        support_client, customer, "trial_extend", trial_ends_on="2001-01-01", reason="typo"
    )
    assert response.status_code == 400
    assert Entry.objects.filter(actor=support_client.user).count() == 0


def test_suspend_answers_account_suspended_and_reissues_the_license(
    membership, other_membership, support_client, catalog_loaded
):
    customer = membership.customer
    from licensing.licenses import license_refresh

    license_refresh(customer=customer)
    first = current_license(customer)
    assert act(support_client, customer, "suspend", reason="fraud check").status_code == 302
    decision = check_access(customer_id=customer.pk, feature="api_calls")
    assert (decision.has_access, decision.reason) == (False, "account_suspended")
    suspended = current_license(customer)
    assert suspended.jti != first.jti
    assert (suspended.status, suspended.features) == ("suspended", {})
    # Another customer is untouched.
    assert check_access(customer_id=other_membership.customer.pk, feature="api_calls").has_access
    assert act(support_client, customer, "suspend", reason="twice").status_code == 409

    assert act(support_client, customer, "unsuspend", reason="cleared").status_code == 302
    assert check_access(customer_id=customer.pk, feature="api_calls").has_access
    kinds = [e.kind for e in staff_entries(customer, support_client.user)]
    assert kinds == ["support_suspend", "support_unsuspend"]


def test_check_access_for_a_suspended_customer_over_http_costs_the_same_queries(
    membership, support_client, client, catalog_loaded
):
    from licensing.api.authentication import service_key_create

    _record, key = service_key_create(name="svc")
    body = {"customer_id": membership.customer.pk, "feature": "api_calls"}
    headers = {"Authorization": f"Bearer {key}"}

    def ask():
        return client.post(
            "/api/v1/check-access", body, content_type="application/json", headers=headers
        )

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ask()  # the key's lookup and the catalog's limits are cached from here on
    with CaptureQueriesContext(connection) as before:
        assert ask().status_code == 200
    act(support_client, membership.customer, "suspend", reason="abuse")
    with CaptureQueriesContext(connection) as first:
        response = ask()
    assert response.json()["reason"] == "account_suspended"
    # The first answer after the change reads the customer's new standing once more.
    assert len(first) == len(before) + 1
    with CaptureQueriesContext(connection) as after:
        response = ask()
    assert len(after) == len(before) > 0
    assert response.json()["reason"] == "account_suspended"


def test_license_reissue_and_resend(
    membership, support_client, mailoutbox, django_capture_on_commit_callbacks
):
    customer = membership.customer
    from licensing.licenses import license_refresh

    license_refresh(customer=customer)
    first = current_license(customer)
    mail.outbox.clear()
    assert act(support_client, customer, "license_reissue", reason="lost it").status_code == 302
    second = current_license(customer)
    assert second.jti != first.jti
    with django_capture_on_commit_callbacks(execute=True):
        response = act(support_client, customer, "license_resend", reason="resend")
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    entries = staff_entries(customer, support_client.user)
    assert [e.kind for e in entries] == ["support_license_reissue", "support_license_resend"]
    assert entries[0].data["details"]["jti"] == str(second.jti)


def test_plan_change_cancel_and_resume_name_stripes_request_ids(
    subscribed, support_client, stripe_emulator
):
    customer = subscribed
    response = act(support_client, customer, "plan_change", plan="pro", reason="upsell call")
    assert response.status_code == 302
    stripe_emulator.deliver()
    assert CustomerPlan.objects.get(customer=customer).plan.code == "pro"
    assert act(support_client, customer, "plan_cancel", reason="leaving").status_code == 302
    assert CustomerPlan.objects.get(customer=customer).cancel_at_period_end
    assert act(support_client, customer, "plan_resume", reason="stays").status_code == 302
    assert not CustomerPlan.objects.get(customer=customer).cancel_at_period_end

    entries = staff_entries(customer, support_client.user)
    assert [e.kind for e in entries] == [
        "support_plan_change", "support_plan_cancel", "support_plan_resume",
    ]  # fmt: skip
    change = entries[0]
    assert change.data["before"]["plan"] == "starter"
    assert change.data["after"]["plan"] == "pro"
    assert change.data["outcome"] == "succeeded"
    assert change.data["stripe_request_ids"]
    assert all(rid.startswith("req_") for rid in change.data["stripe_request_ids"])
    assert change.sentence == "Plan changed to Pro by support@example.com: upsell call"
    # The projection's own entry is the staff's, but names nobody: one entry per action.
    assert Entry.objects.filter(customer=customer, kind="plan_changed").get().source == "staff"


def test_a_stripe_failure_is_a_clear_message_a_failed_entry_and_no_change(
    subscribed, support_client, stripe_emulator
):
    customer = subscribed
    stripe_emulator.faults.add({"kind": "error_500", "method": "POST", "count": 10})
    response = act(support_client, customer, "plan_cancel", reason="leaving")
    stripe_emulator.faults.clear()
    assert response.status_code == 302
    page = support_client.get(response.url).content.decode()
    assert "Cancel at period end failed: Our payment provider is not responding" in page
    [entry] = staff_entries(customer, support_client.user)
    assert entry.data["outcome"] == "failed"
    assert entry.data["changed"] == []
    assert entry.data["stripe_request_ids"]  # the failed requests, as Stripe logged them
    assert "failed" in entry.sentence and "support@example.com" in entry.sentence
    assert not CustomerPlan.objects.get(customer=customer).cancel_at_period_end


def test_resync_and_usage_sync(subscribed, support_client, stripe_emulator):
    customer = subscribed
    # Our projection drifted (a lost webhook): resync brings Stripe's state back.
    CustomerPlan.objects.filter(customer=customer).update(cancel_at_period_end=True)
    assert act(support_client, customer, "resync", reason="looks wrong").status_code == 302
    assert not CustomerPlan.objects.get(customer=customer).cancel_at_period_end
    assert act(support_client, customer, "usage_sync", reason="now please").status_code == 302
    entries = staff_entries(customer, support_client.user)
    assert [e.kind for e in entries] == ["support_resync", "support_usage_sync"]
    assert entries[0].data["changed"] == ["cancel_at_period_end"]
    assert entries[1].data["outcome"] == "succeeded"


def test_replaying_a_webhook_runs_it_again_and_shows_what_changed(
    subscribed, support_client, stripe_emulator
):
    customer = subscribed
    plan = CustomerPlan.objects.get(customer=customer)
    event = StripeEvent.objects.filter(
        object_id=plan.subscription_id, type__startswith="customer.subscription"
    ).first()
    assert event is not None and event.status == "processed"
    CustomerPlan.objects.filter(pk=plan.pk).update(status=CustomerPlan.Status.PAST_DUE)
    response = act(support_client, customer, "event_replay", event=event.pk, reason="retry")
    assert response.status_code == 302
    assert CustomerPlan.objects.get(pk=plan.pk).status == "active"  # Stripe's state decides
    [entry] = staff_entries(customer, support_client.user)
    assert "plan_status" in entry.data["changed"]
    assert event.type in entry.sentence
    # Another customer's event cannot be named.
    other = StripeEvent.objects.create(
        event_id="evt_other", type="customer.updated", object_type="customer",
        object_id="cus_someone_else", stripe_created=timezone.now(),
    )  # fmt: skip
    assert (
        act(support_client, customer, "event_replay", event=other.pk, reason="x").status_code == 404
    )


def test_advancing_the_test_clock_renews_and_is_recorded(
    subscribed, support_client, stripe_emulator
):
    customer = subscribed
    period_end = CustomerPlan.objects.get(customer=customer).current_period_end
    response = act(support_client, customer, "clock_advance", days="32", reason="demo renewal")
    assert response.status_code == 302
    stripe_emulator.deliver()
    renewed = CustomerPlan.objects.get(customer=customer).current_period_end
    assert renewed > period_end
    [entry] = staff_entries(customer, support_client.user)
    assert entry.sentence.startswith("Test clock advanced 32 days")


def test_advancing_the_clock_in_live_mode_is_refused(subscribed, support_client, settings):
    settings.STRIPE_LIVE_MODE = True
    response = act(support_client, subscribed, "clock_advance", days="1", reason="x")
    assert response.status_code == 409
    assert staff_entries(subscribed, support_client.user) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [("invoice_retry", "paid"), ("invoice_void", "void"),
     ("invoice_uncollectible", "uncollectible")],
)  # fmt: skip
def test_an_open_invoice_is_retried_with_a_chosen_card_voided_or_written_off(
    subscribed, signed_in_client, support_client, stripe_emulator, stripe_client, name, expected
):
    """The renewal fails on a primary card that declines, leaving the invoice open."""
    customer = subscribed
    failing = add_card(signed_in_client, stripe_emulator, "pm_card_chargeCustomerFail")
    signed_in_client.post(reverse("billing:payment_method_make_primary", args=[failing]))
    stripe_emulator.deliver()
    period_end = CustomerPlan.objects.get(customer=customer).current_period_end
    stripe_emulator.advance_clock(customer.clock.id, int(period_end.timestamp()) + 3600)
    page = support_client.get(reverse("support:customer", args=[customer.pk]))
    [row] = page.context["page"].open_invoices
    assert f'data-action="{name}"' in page.content.decode()
    invoice = row.invoice
    good = next(c.stripe_id for c in page.context["page"].cards if c.stripe_id != failing)
    response = act(
        support_client, customer, name, invoice=invoice.pk, card=good,
        reason="customer on the phone",
    )  # fmt: skip
    assert response.status_code == 302
    [entry] = staff_entries(customer, support_client.user)
    assert entry.data["outcome"] == "succeeded", entry.sentence
    assert entry.data["before"]["invoices"][str(invoice.pk)]["stripe_status"] == "open"
    assert entry.data["after"]["invoices"][str(invoice.pk)]["stripe_status"] == expected
    assert stripe_client.v1.invoices.retrieve(invoice.stripe_invoice_id).status == expected
    assert entry.data["stripe_request_ids"]
    # Done once: a second click is refused, with nothing written.
    again = act(support_client, customer, name, invoice=invoice.pk, card=good, reason="again")
    assert again.status_code == 409
    assert len(staff_entries(customer, support_client.user)) == 1


def test_a_credit_lands_on_the_stripe_balance(subscribed, support_client, stripe_client):
    customer = subscribed
    response = act(
        support_client, customer, "credit_add", amount="12.50", currency="EUR",
        reason="outage in May",
    )  # fmt: skip
    assert response.status_code == 302
    stripe_id = customer.billing.billing_info.stripe_id
    assert stripe_client.v1.customers.retrieve(stripe_id).balance == -1250
    [entry] = staff_entries(customer, support_client.user)
    assert entry.sentence == (
        "Credit of €12.50 added to the Stripe balance by support@example.com: outage in May"
    )
    assert entry.data["details"]["ending_balance"] == -1250


@pytest.mark.parametrize("amount", ["abc", "-5", "0", "1.005"])
def test_a_bad_credit_is_refused_and_nothing_is_sent(
    subscribed, support_client, stripe_client, stripe_emulator, amount
):
    stripe_emulator.http.requests.clear()
    response = act(
        support_client, subscribed, "credit_add", amount=amount, currency="eur", reason="x"
    )
    assert response.status_code == 400
    assert stripe_emulator.http.requests == []
    assert staff_entries(subscribed, support_client.user) == []


def test_a_defect_in_an_action_is_still_recorded_as_failed(membership, support_client, monkeypatch):
    from support import actions

    def broken(customer, staff, data):
        raise RuntimeError("a bug")

    monkeypatch.setitem(
        actions.ACTIONS, "resync", actions.Action("resync", "Resync from Stripe", broken,
                                                  needs_billing=False)
    )  # fmt: skip
    response = act(support_client, membership.customer, "resync", reason="check")
    assert response.status_code == 302
    [entry] = staff_entries(membership.customer, support_client.user)
    assert entry.data["outcome"] == "failed"
    assert "internal error" in entry.sentence


def test_support_sets_a_spend_cap_with_a_reason(membership, support_client, catalog_loaded):
    customer = membership.customer
    response = act(
        support_client, customer, "spend_cap_set", feature="", amount="5000",
        thresholds="50,80,100", mode="stop", reason="customer asked for a hard limit",
    )  # fmt: skip
    assert response.status_code == 302
    from licensing.models import SpendCap

    cap = SpendCap.objects.get(customer=customer)
    assert (cap.amount, cap.thresholds, cap.mode) == (5000, [50, 80, 100], "stop")
    [entry] = staff_entries(customer, support_client.user)
    assert entry.kind == "support_spend_cap_set"
    bad = act(
        support_client, customer, "spend_cap_set", feature="", amount="5000",
        thresholds="50,200", mode="stop", reason="typo",
    )  # fmt: skip
    assert bad.status_code == 400
    assert len(staff_entries(customer, support_client.user)) == 1
    assert SpendCap.objects.get(customer=customer).thresholds == [50, 80, 100]
