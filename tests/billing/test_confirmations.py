"""Removing a card, cancelling a plan and a switch that ends the trial ask once more (a
page with the consequences, then the real POST with confirm=yes; CSRF-protected, no
JavaScript needed), and each plan email says what happened: trial or paid, upgrade or
downgrade, charged or credited."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from licensing.catalog import catalog_read
from licensing.models import CustomerPlan, Plan
from licensing.services import catalog_load, customer_plan_apply
from tests.billing.test_cards import add_card, card_order
from tests.billing.test_plans import PLANS_URL, catalog, clock, end_trial, upgrade  # noqa: F401


def test_remove_asks_once_more_with_what_changes(
    signed_in_client, membership, stripe_emulator, stripe_client
):
    first = add_card(signed_in_client, stripe_emulator)
    second = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")
    url = reverse("billing:payment_method_remove", args=[first])

    page = signed_in_client.post(url)

    assert page.status_code == 200
    text = page.content.decode()
    assert "Remove Visa ending 4242?" in text
    assert "Mastercard ending 4444 becomes your primary card" in text
    assert 'name="confirm" value="yes"' in text and "csrfmiddlewaretoken" in text
    assert card_order(membership.customer) == [first, second]
    assert stripe_client.v1.payment_methods.retrieve(first).customer is not None

    removed = signed_in_client.post(url, {"confirm": "yes"})
    assert removed.status_code == 302
    assert card_order(membership.customer) == [second]


def test_removing_a_card_that_is_not_primary_keeps_the_primary(
    signed_in_client, membership, stripe_emulator
):
    add_card(signed_in_client, stripe_emulator)
    second = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")
    text = signed_in_client.post(
        reverse("billing:payment_method_remove", args=[second])
    ).content.decode()
    assert "Remove Mastercard ending 4444?" in text
    assert "Your primary card stays as it is." in text


def test_the_confirmation_needs_the_csrf_token(membership, stripe_emulator, signed_in_client):
    card = add_card(signed_in_client, stripe_emulator)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(membership.user)
    url = reverse("billing:payment_method_remove", args=[card])
    assert strict.post(url, {"confirm": "yes"}).status_code == 403
    assert strict.post(reverse("billing:plan_cancel"), {"confirm": "yes"}).status_code == 403
    assert card_order(membership.customer) == [card]


@pytest.mark.django_db(transaction=True)
def test_cancel_asks_once_more_then_cancels_a_paid_plan(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    end_trial(membership.customer)
    upgrade(signed_in_client, stripe_emulator, "starter")
    stripe_emulator.deliver()
    plan = CustomerPlan.objects.get(customer=membership.customer)

    page = signed_in_client.post(reverse("billing:plan_cancel"))

    text = page.content.decode()
    assert page.status_code == 200
    assert "Cancel your Starter plan?" in text
    assert f"ends on {plan.current_period_end:%-d %B %Y}, at the close of the period" in text
    assert "its price is not charged again" in text
    assert not stripe_client.v1.subscriptions.retrieve(plan.subscription_id).cancel_at_period_end

    signed_in_client.post(reverse("billing:plan_cancel"), {"confirm": "yes"})
    stripe_emulator.deliver()
    assert stripe_client.v1.subscriptions.retrieve(plan.subscription_id).cancel_at_period_end
    [email] = [m for m in mail.outbox if "will end on" in m.subject]
    assert "at the end of the period you paid for" in email.body
    assert "its price will not be charged again" in email.body


@pytest.mark.django_db(transaction=True)
def test_cancel_in_a_trial_says_nothing_is_charged(
    signed_in_client,
    membership,
    stripe_emulator,
    clock,  # noqa: F811
):
    upgrade(signed_in_client, stripe_emulator, "starter")  # the portal trial carries over
    stripe_emulator.deliver()
    assert CustomerPlan.objects.get(customer=membership.customer).status == "trialing"
    [activated] = [m for m in mail.outbox if "is active" in m.subject]
    assert "nothing was charged yet" in activated.body

    text = signed_in_client.post(reverse("billing:plan_cancel")).content.decode()
    assert "ends with your trial" in text and "Nothing is charged" in text
    signed_in_client.post(reverse("billing:plan_cancel"), {"confirm": "yes"})
    stripe_emulator.deliver()
    [email] = [m for m in mail.outbox if "will end on" in m.subject]
    assert "will end with its free trial" in email.body
    assert "period you paid for" not in email.body


@pytest.mark.django_db(transaction=True)
def test_a_switch_that_ends_the_trial_says_so_before_and_charges_the_first_month(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    upgrade(signed_in_client, stripe_emulator, "starter")
    stripe_emulator.deliver()
    # A plan with a trial: the switch keeps the trial, and the page says nothing is charged.
    pro = signed_in_client.get(reverse("billing:plan_change", args=["pro"]))
    assert "nothing is charged now" in pro.content.decode()
    assert pro.context["preview"].amount_due == 0

    business = signed_in_client.get(reverse("billing:plan_change", args=["business"]))

    text = business.content.decode()
    assert "Business has no free trial: switching ends your trial now." in text
    assert business.context["preview"].amount_due == 19900
    assert "End my trial and switch" in text
    signed_in_client.post(
        reverse("billing:plan_change", args=["business"]),
        {"proration": business.context["proration"]},
    )
    stripe_emulator.deliver()
    plan = CustomerPlan.objects.get(customer=membership.customer)
    assert (plan.plan.code, plan.status) == ("business", "active")
    paid = stripe_client.v1.invoices.list({"subscription": plan.subscription_id, "limit": 100})
    assert [i.amount_paid for i in paid if i.status == "paid" and i.amount_paid] == [19900]
    [email] = [m for m in mail.outbox if "now on the Business plan" in m.subject]
    assert "your trial ended with the switch" in email.body


# --- The plan emails' wording, per case, through the projection's one writer ---------------


@pytest.fixture
def plans(db):
    catalog_load(catalog=catalog_read())
    return {plan.code: plan for plan in Plan.objects.all()}


def apply(customer, plan, status, *, cancel=False) -> None:
    now = timezone.now()
    customer_plan_apply(
        customer=customer,
        plan=plan,
        status=status,
        current_period_start=now,
        current_period_end=now + timedelta(days=30),
        cancel_at_period_end=cancel,
        subscription_id="sub_wording",
    )


@pytest.mark.parametrize(
    ("before", "after", "status_before", "status_after", "says", "never"),
    [
        ("starter", "pro", "active", "active", "was charged to your primary card", "credited"),
        ("pro", "starter", "active", "active", "was credited to your account", "charged to"),
        ("starter", "pro", "trialing", "trialing", "still in your free trial", "charged to"),
        ("starter", "business", "trialing", "active", "your trial ended with the switch",
         "credited"),
    ],
)  # fmt: skip
def test_the_plan_changed_email_says_what_the_switch_did(
    membership,
    plans,
    django_capture_on_commit_callbacks,
    before,
    after,
    status_before,
    status_after,
    says,
    never,
):
    customer = membership.customer
    apply(customer, plans[before], status_before)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        apply(customer, plans[after], status_after)
    [email] = [m for m in mail.outbox if m.subject.startswith("You are now on")]
    assert email.subject == f"You are now on the {plans[after].name} plan"
    assert f"from the {plans[before].name} plan to the {plans[after].name} plan" in email.body
    assert says in email.body
    assert never not in email.body
    assert "invoiced at once" not in email.body


@pytest.mark.parametrize(
    ("before", "after", "details", "says", "never"),
    [
        ("starter", "pro", {"charged": 1500, "credit_used": 0, "credited": 0},
         "was charged to your primary card: €15.00.", "credit"),
        ("starter", "pro", {"charged": 500, "credit_used": 1000, "credited": 0},
         "charged to your primary card: €5.00, after €10.00 of your account credit", "credited"),
        ("starter", "pro", {"charged": 0, "credit_used": 1500, "credited": 0},
         "paid from your account credit (€15.00): nothing was charged to your card",
         "charged to your primary"),
        ("pro", "starter", {"charged": 0, "credit_used": 0, "credited": 2000},
         "price for the rest of this period, €20.00, was credited to your account", "charged to"),
    ],
)  # fmt: skip
def test_the_plan_changed_email_says_what_the_invoice_charged_or_credited(
    membership, plans, django_capture_on_commit_callbacks, before, after, details, says, never
):
    customer = membership.customer
    apply(customer, plans[before], "active")
    mail.outbox.clear()
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        customer_plan_apply(
            customer=customer,
            plan=plans[after],
            status="active",
            current_period_start=now,
            current_period_end=now + timedelta(days=30),
            cancel_at_period_end=False,
            subscription_id="sub_wording",
            change_details={**details, "currency": "eur"},
        )
    [email] = [m for m in mail.outbox if m.subject.startswith("You are now on")]
    assert says in email.body
    assert never not in email.body


@pytest.mark.parametrize(
    ("status", "says", "never"),
    [
        ("active", "The first payment was charged to your card", "trial"),
        ("trialing", "nothing was charged yet", "was charged to"),
    ],
)
def test_the_plan_activated_email_says_whether_anything_was_charged(
    membership, plans, django_capture_on_commit_callbacks, status, says, never
):
    with django_capture_on_commit_callbacks(execute=True):
        apply(membership.customer, plans["starter"], status)
    [email] = [m for m in mail.outbox if m.subject == "Your Starter plan is active"]
    assert says in email.body
    assert never not in email.body


@pytest.mark.parametrize(
    ("status", "says", "never"),
    [
        ("active", "at the end of the period you paid for", "trial"),
        ("trialing", "will end with its free trial", "paid for"),
    ],
)
def test_the_cancellation_email_says_trial_or_paid(
    membership, plans, django_capture_on_commit_callbacks, status, says, never
):
    apply(membership.customer, plans["pro"], status)
    with django_capture_on_commit_callbacks(execute=True):
        apply(membership.customer, plans["pro"], status, cancel=True)
    [email] = [m for m in mail.outbox if "will end on" in m.subject]
    assert says in email.body
    assert never not in email.body
