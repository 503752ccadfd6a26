"""Plan changes are paid or not made (issue 12, build item 5), through the emulator: the
preview says what Stripe charges now (its own totals, the account's credit included), a
decline leaves the plan as it was with the reason on the page, a card that needs
authentication sends the customer to the hosted invoice page and the switch applies once
paid, and a switch nobody paid expires with the customer told."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from audit.models import Entry
from billing.models import PaymentMethod
from billing_portal.money import money_format
from licensing.models import CustomerPlan
from tests.billing.test_plans import PLANS_URL, catalog, clock, end_trial, upgrade  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # emails are queued on commit

DAY = 24 * 3600


def subscribed(client, membership, stripe_emulator, clock, code="pro"):  # noqa: F811
    end_trial(membership.customer)
    upgrade(client, stripe_emulator, code)
    stripe_emulator.deliver()
    plan = CustomerPlan.objects.get(customer=membership.customer)
    assert (plan.plan.code, plan.status) == (code, "active")
    return plan


def switch(client, code: str):
    """The switch page, then its confirm button; returns (preview, the POST's answer)."""
    page = client.get(reverse("billing:plan_change", args=[code]))
    assert page.status_code == 200
    response = client.post(
        reverse("billing:plan_change", args=[code]), {"proration": page.context["proration"]}
    )
    return page, response


def latest_switch_invoice(stripe_client, subscription_id):
    invoices = stripe_client.v1.invoices.list({"subscription": subscription_id, "limit": 100})
    return next(i for i in invoices.data if i.billing_reason == "subscription_update")


def plan_code(customer) -> str:
    return CustomerPlan.objects.get(customer=customer).plan.code


def stripe_product(stripe_client, subscription_id) -> str:
    subscription = stripe_client.v1.subscriptions.retrieve(subscription_id)
    return subscription["items"].data[0].price.product


def test_downgrade_then_upgrade_the_preview_charges_what_stripe_charges(
    signed_in_client,
    membership,
    other_membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    """Must show 4: the downgrade's credit is shown and kept; the upgrade after it is
    previewed net of that credit, and Stripe's paid invoice charged exactly that."""
    customer = membership.customer
    plan = subscribed(signed_in_client, membership, stripe_emulator, clock, "pro")
    stripe_emulator.advance_clock(clock.id, clock.frozen_time + 10 * DAY)

    down, response = switch(signed_in_client, "starter")
    preview = down.context["preview"]
    assert preview.amount_due == 0 and preview.credit_created > 0
    text = down.content.decode()
    assert f"{money_format(preview.credit_created, 'eur')}</strong>, is credited" in text
    assert 'id="amount-due">€0.00<' in text
    assert response.status_code == 302 and response.url == PLANS_URL
    stripe_emulator.deliver()
    assert plan_code(customer) == "starter"
    downgrade = latest_switch_invoice(stripe_client, plan.subscription_id)
    assert (downgrade.status, downgrade.amount_paid) == ("paid", 0)
    credit = -stripe_client.v1.customers.retrieve(downgrade.customer).balance
    assert credit == preview.credit_created
    [email] = [m for m in mail.outbox if m.subject == "You are now on the Starter plan"]
    assert f"{money_format(credit, 'eur')}, was credited to your account" in email.body
    assert "charged to" not in email.body

    stripe_emulator.advance_clock(clock.id, clock.frozen_time + 11 * DAY)
    up, response = switch(signed_in_client, "business")
    preview = up.context["preview"]
    assert preview.credit_used == credit  # all of it goes toward the upgrade
    assert preview.amount_due == preview.total - credit > 0
    shown = re.search(r'id="amount-due">([^<]+)<', up.content.decode()).group(1)
    assert shown == money_format(preview.amount_due, "eur")
    assert response.status_code == 302
    stripe_emulator.deliver()

    upgrade_invoice = latest_switch_invoice(stripe_client, plan.subscription_id)
    assert upgrade_invoice.status == "paid"
    assert upgrade_invoice.amount_paid == preview.amount_due  # what Stripe charged
    assert upgrade_invoice.starting_balance == -credit
    assert plan_code(customer) == "business"
    [email] = [m for m in mail.outbox if m.subject == "You are now on the Business plan"]
    assert f"charged to your primary card: {money_format(preview.amount_due, 'eur')}" in (
        email.body
    )
    assert f"after {money_format(credit, 'eur')} of your account credit" in email.body
    assert not CustomerPlan.objects.filter(customer=other_membership.customer).exists()


def test_an_upgrade_paid_by_the_credit_charges_nothing_and_says_so(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    """The issue's case: after a downgrade's credit, the switch page said a charge while
    Stripe charged nothing. Now both say €0.00, and the email says the credit paid."""
    plan = subscribed(signed_in_client, membership, stripe_emulator, clock, "pro")
    stripe_emulator.advance_clock(clock.id, clock.frozen_time + 10 * DAY)
    switch(signed_in_client, "starter")
    stripe_emulator.deliver()
    stripe_emulator.advance_clock(clock.id, clock.frozen_time + 11 * DAY)

    up, _response = switch(signed_in_client, "pro")
    stripe_emulator.deliver()

    preview = up.context["preview"]
    assert preview.total > 0 and preview.amount_due == 0 and preview.credit_left > 0
    assert 'id="amount-due">€0.00<' in up.content.decode()
    invoice = latest_switch_invoice(stripe_client, plan.subscription_id)
    assert (invoice.status, invoice.amount_paid) == ("paid", 0)
    assert plan_code(membership.customer) == "pro"
    [email] = [m for m in mail.outbox if m.subject == "You are now on the Pro plan"]
    assert "paid from your account credit" in email.body
    assert "nothing was charged to your card" in email.body


def test_a_declined_switch_leaves_the_plan_with_the_reason_on_the_page(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    from tests.billing.test_cards import add_card

    customer = membership.customer
    plan = subscribed(signed_in_client, membership, stripe_emulator, clock, "starter")
    failing = add_card(signed_in_client, stripe_emulator, "pm_card_chargeCustomerFail")
    signed_in_client.post(reverse("billing:payment_method_make_primary", args=[failing]))
    stripe_emulator.deliver()
    mail.outbox.clear()

    _page, response = switch(signed_in_client, "pro")
    assert response.status_code == 302
    assert response.url == reverse("billing:plan_change", args=["pro"])
    page = signed_in_client.get(response.url)
    stripe_emulator.deliver()

    text = page.content.decode()
    assert "Your card was declined. You are still on Starter" in text
    assert "nothing was charged" in text
    assert plan_code(customer) == "starter"
    subscription = stripe_client.v1.subscriptions.retrieve(plan.subscription_id)
    assert subscription.pending_update is None
    assert stripe_product(stripe_client, plan.subscription_id) == "plan_starter"
    assert subscription.status == "active"
    held = latest_switch_invoice(stripe_client, plan.subscription_id)
    assert (held.status, held.amount_paid) == ("void", 0)  # nobody can pay it later
    assert not [m for m in mail.outbox if m.subject.startswith("You are now on")]
    kinds = list(Entry.objects.filter(customer=customer).values_list("kind", flat=True))
    assert "plan_change_declined" in kinds and "plan_changed" not in kinds
    assert PaymentMethod.objects.for_customer(customer).count() == 2


def confirming_bank(client, stripe_emulator) -> str:
    """The primary card from now on: every charge needs the customer's authentication."""
    from tests.billing.test_cards import add_card

    card = add_card(client, stripe_emulator, "pm_card_authenticationRequired")
    client.post(reverse("billing:payment_method_make_primary", args=[card]))
    stripe_emulator.deliver()
    return card


def authenticate_on_hosted_page(stripe_emulator, url: str):
    """The customer completes the bank's challenge on Stripe's hosted invoice page."""
    page = stripe_emulator.http.dispatch("GET", url, {}, None)
    assert "Complete authentication" in page.body.decode()
    return stripe_emulator.http.dispatch("POST", url, {}, "authenticate=complete")


def test_the_plan_pages_queries_do_not_grow_with_the_timeline(
    signed_in_client,
    membership,
    stripe_emulator,
    django_assert_max_num_queries,
    clock,  # noqa: F811
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.ledger import billing_entries_record

    subscribed(signed_in_client, membership, stripe_emulator, clock, "starter")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert signed_in_client.get(PLANS_URL).status_code == 200
        return len(captured)

    few = queries()
    for kind in ["plan_change_pending", "plan_change_declined"] * 15:
        billing_entries_record(
            customer_ids=[membership.customer.customer_id], kind=kind, source="portal",
            plan="Pro", plan_code="pro", expires_at=0,
        )  # fmt: skip
    with django_assert_max_num_queries(few):
        signed_in_client.get(PLANS_URL)


def test_authentication_sends_to_the_hosted_page_and_the_switch_applies_once_paid(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    plan = subscribed(signed_in_client, membership, stripe_emulator, clock, "starter")
    confirming_bank(signed_in_client, stripe_emulator)
    mail.outbox.clear()

    page, response = switch(signed_in_client, "pro")
    assert "the switch applies once it is paid" in page.content.decode()
    stripe_emulator.deliver()

    held = latest_switch_invoice(stripe_client, plan.subscription_id)
    assert response.status_code == 302 and response.url == held.hosted_invoice_url
    assert held.status == "open"
    assert plan_code(customer) == "starter"
    assert stripe_product(stripe_client, plan.subscription_id) == "plan_starter"
    plans_page = signed_in_client.get(PLANS_URL).content.decode()
    assert "Your switch to <strong>Pro</strong> waits for your payment" in plans_page
    assert held.hosted_invoice_url in plans_page
    [pending] = [m for m in mail.outbox if m.subject.startswith("Confirm your payment")]
    assert held.hosted_invoice_url in pending.body
    assert "applies as soon as the payment is made" in pending.body
    # A second click on the same switch keeps the same payment waiting.
    again = signed_in_client.post(
        reverse("billing:plan_change", args=["pro"]), {"proration": page.context["proration"]}
    )
    assert again.url == held.hosted_invoice_url
    assert stripe_client.v1.invoices.retrieve(held.id).status == "open"

    answer = authenticate_on_hosted_page(stripe_emulator, held.hosted_invoice_url)
    assert answer.status == 200
    stripe_emulator.deliver()

    assert plan_code(customer) == "pro"
    assert stripe_client.v1.invoices.retrieve(held.id).status == "paid"
    assert len([m for m in mail.outbox if m.subject == "You are now on the Pro plan"]) == 1
    kinds = list(Entry.objects.filter(customer=customer).values_list("kind", flat=True))
    assert kinds.count("plan_changed") == 1 and "plan_change_pending" in kinds
    assert "waits for your payment" not in signed_in_client.get(PLANS_URL).content.decode()
    stripe_emulator.deliver()  # nothing more: the change was applied once
    assert len([m for m in mail.outbox if m.subject == "You are now on the Pro plan"]) == 1


def test_a_switch_never_confirmed_expires_the_plan_stays_and_the_customer_is_told(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    plan = subscribed(signed_in_client, membership, stripe_emulator, clock, "starter")
    confirming_bank(signed_in_client, stripe_emulator)
    made_at = stripe_client.v1.test_helpers.test_clocks.retrieve(clock.id).frozen_time
    switch(signed_in_client, "pro")
    stripe_emulator.deliver()
    held = latest_switch_invoice(stripe_client, plan.subscription_id)
    mail.outbox.clear()

    stripe_emulator.advance_clock(clock.id, made_at + 22 * 3600)
    assert stripe_client.v1.subscriptions.retrieve(plan.subscription_id).pending_update
    assert not [m for m in mail.outbox if "was not made" in m.subject]
    stripe_emulator.advance_clock(clock.id, made_at + 24 * 3600)

    assert plan_code(customer) == "starter"
    subscription = stripe_client.v1.subscriptions.retrieve(plan.subscription_id)
    assert (subscription.pending_update, subscription.status) == (None, "active")
    assert stripe_client.v1.invoices.retrieve(held.id).status == "void"
    [told] = [m for m in mail.outbox if m.subject == "Your switch to the Pro plan was not made"]
    assert "You stay on the Starter plan" in told.body
    assert Entry.objects.filter(customer=customer, kind="plan_change_expired").count() == 1
    assert "waits for your payment" not in signed_in_client.get(PLANS_URL).content.decode()


def test_a_declined_switch_that_would_end_the_trial_keeps_the_trial(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    from tests.billing.test_cards import add_card

    customer = membership.customer
    upgrade(signed_in_client, stripe_emulator, "starter")  # the portal trial carries over
    stripe_emulator.deliver()
    plan = CustomerPlan.objects.get(customer=customer)
    assert plan.status == "trialing"
    failing = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")
    stripe_emulator.emulator.card_behavior_set(failing, decline_code="insufficient_funds")
    signed_in_client.post(reverse("billing:payment_method_make_primary", args=[failing]))
    stripe_emulator.deliver()

    _page, response = switch(signed_in_client, "business")  # no trial: it would end it
    text = signed_in_client.get(response.url).content.decode()
    stripe_emulator.deliver()

    assert "insufficient funds" in text.lower() and "You are still on Starter" in text
    after = CustomerPlan.objects.get(customer=customer)
    assert (after.plan.code, after.status) == ("starter", "trialing")
    subscription = stripe_client.v1.subscriptions.retrieve(plan.subscription_id)
    assert (subscription.status, subscription.pending_update) == ("trialing", None)
    assert subscription.trial_end == int(plan.current_period_end.timestamp())


def test_the_preview_adds_tax_and_takes_the_credit_from_stripes_totals(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    monkeypatch,
    clock,  # noqa: F811
):
    """The emulator has no tax: Stripe's preview invoice, as the gateway returns it, with
    a tax and a credit larger than the total (the one patch of the gateway here)."""
    from billing import gateway

    subscribed(signed_in_client, membership, stripe_emulator, clock, "starter")
    previewed = {
        "currency": "eur",
        "total": 1210,
        "amount_due": 0,
        "starting_balance": -1500,
        "total_taxes": [{"amount": 210, "taxability_reason": "standard_rated"}],
        "lines": {"data": [
            {"description": "Unused time on Starter", "amount": -600,
             "parent": {"subscription_item_details": {"proration": True}}},
            {"description": "Remaining time on Pro", "amount": 1600,
             "parent": {"subscription_item_details": {"proration": True}}},
        ]},
    }  # fmt: skip
    monkeypatch.setattr(gateway, "subscription_change_preview", lambda **_: previewed)

    page = signed_in_client.get(reverse("billing:plan_change", args=["pro"]))

    preview = page.context["preview"]
    assert (preview.amount_due, preview.tax, preview.total) == (0, 210, 1210)
    assert (preview.credit_used, preview.credit_left, preview.credit_created) == (1210, 290, 0)
    text = page.content.decode()
    assert 'id="tax">€2.10<' in text and 'id="credit-used">\N{MINUS SIGN}€12.10<' in text
    assert 'id="amount-due">€0.00<' in text
    assert "keeps €2.90 of credit" in text
