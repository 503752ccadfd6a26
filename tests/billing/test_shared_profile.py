"""Through the Stripe emulator: an owner of two accounts makes B pay with A's billing
profile. One Stripe customer, two subscriptions, each with its own account's id in its
metadata; at the renewal each invoice carries its own account's id and lines, and each
license its own plan. Detaching gives B a new Stripe customer and moves nothing paid.
A third account (`other_membership`) is present and untouched throughout."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from billing.invoice_sync import LINE_METADATA, invoice_sync_to_stripe
from billing.models import BillingInfo, CustomerBilling, Invoice
from licensing.models import CustomerPlan, License
from licensing.resources import resource_record
from licensing.services import usage_record
from licensing.verify import license_verify
from tests.accounts.factories import MembershipFactory
from tests.billing.test_plans import DAY, catalog, clock, end_trial, upgrade  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # as the plan tests: on-commit work

SWITCH = reverse("account_switch")
SHARE = reverse("billing:profile_share")
DETACH = reverse("billing:profile_detach")


@pytest.fixture
def second_account(membership):
    """Account B, owned by A's owner too."""
    return MembershipFactory(user=membership.user, customer__name="Acme Labs").customer


def share(client, b, a):
    client.post(SWITCH, {"customer_id": b.customer_id})
    return client.post(SHARE, {"payer": a.customer_id})


def test_two_accounts_one_stripe_customer_two_subscriptions_each_renewal_its_own(
    signed_in_client,
    membership,
    other_membership,
    second_account,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    a, b = membership.customer, second_account
    end_trial(a)
    end_trial(b)
    upgrade(signed_in_client, stripe_emulator, "pro")  # A, the oldest account, is current
    stripe_emulator.deliver()

    assert share(signed_in_client, b, a).status_code == 302
    stripe_customer = BillingInfo.objects.for_customer(a).stripe_id
    assert BillingInfo.objects.for_customer(b).stripe_id == stripe_customer
    cards_page = signed_in_client.get(reverse("billing:payment_methods")).content.decode()
    assert "cards of <strong>Acme Ltd</strong>'s billing profile" in cards_page
    upgrade(signed_in_client, stripe_emulator, "starter")  # B, on A's Stripe customer
    stripe_emulator.deliver()

    subscriptions = stripe_client.v1.subscriptions.list({"customer": stripe_customer}).data
    assert sorted(s.metadata.customer_id for s in subscriptions) == sorted(
        [a.customer_id, b.customer_id]
    )
    assert stripe_client.v1.customers.list({"limit": 100}).data.__len__() == 1
    plans = {p.customer_id: p for p in CustomerPlan.objects.filter(customer__in=[a, b])}
    assert (plans[a.pk].plan.code, plans[b.pk].plan.code) == ("pro", "starter")
    assert plans[a.pk].subscription_id != plans[b.pk].subscription_id
    assert not CustomerPlan.objects.filter(customer=other_membership.customer).exists()

    # Each its own use: A's API calls beyond Pro's, B's projects beyond Starter's.
    usage_record(customer=a, feature="api_calls", quantity=160_000, idempotency_key="a-1")
    for n in range(5):
        resource_record(
            customer=b, feature="projects", resource_id=f"b{n}", action="attach",
            idempotency_key=f"b-{n}", occurred_at=timezone.now(),
        )  # fmt: skip
    for account in (a, b):
        invoice_sync_to_stripe(invoice_id=Invoice.objects.get(customer=account).pk)
    ledgers = {
        account.pk: {
            str(line.pk): line.amount
            for line in Invoice.objects.get(customer=account).lines.exclude(kind="plan")
        }
        for account in (a, b)
    }
    assert all(ledgers.values()), ledgers

    period_end = max(int(p.current_period_end.timestamp()) for p in plans.values())
    stripe_emulator.advance_clock(clock.id, period_end + DAY)

    renewals = [
        invoice
        for invoice in stripe_client.v1.invoices.list({"customer": stripe_customer}).data
        if invoice.billing_reason == "subscription_cycle"
    ]
    assert len(renewals) == 2
    for renewal in renewals:
        details = renewal.parent.subscription_details
        account_id = details.metadata.customer_id
        assert details.subscription == plans[account_id].subscription_id
        items = {
            line.metadata[LINE_METADATA]: line.amount
            for line in stripe_client.v1.invoices.retrieve(renewal.id).lines.data
            if (line.metadata or {}).get(LINE_METADATA)
        }
        assert items == ledgers[account_id], account_id
        ours = Invoice.objects.get(stripe_invoice_id=renewal.id)
        assert (ours.customer_id, ours.status, ours.total) == (
            account_id, Invoice.Status.FINALIZED, renewal.total,
        )  # fmt: skip

    client = Client()
    jwks = client.get("/.well-known/jwks.json").json()
    for account, code in [(a, "pro"), (b, "starter")]:
        current = License.objects.get(customer=account, revoked_at__isnull=True)
        claims = license_verify(current.token, jwks)
        assert (claims["sub"], claims["plan"]) == (account.customer_id, code)


def test_detaching_makes_a_new_stripe_customer_and_moves_nothing(
    signed_in_client,
    membership,
    other_membership,
    second_account,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    a, b = membership.customer, second_account
    assert share(signed_in_client, b, a).status_code == 302
    shared = BillingInfo.objects.for_customer(a)
    a_cards = list(shared.payment_methods.values_list("stripe_id", flat=True))

    assert signed_in_client.post(DETACH).status_code == 302
    own = BillingInfo.objects.for_customer(b)
    assert own.stripe_id != shared.stripe_id
    assert stripe_client.v1.customers.retrieve(own.stripe_id).metadata.customer_id == b.pk
    assert BillingInfo.objects.for_customer(a) == shared
    assert list(shared.payment_methods.values_list("stripe_id", flat=True)) == a_cards
    assert not own.payment_methods.exists()
    kinds = {(e.customer_id, e.kind) for e in b.audit_entries.all()} | {
        (e.customer_id, e.kind) for e in a.audit_entries.all()
    }
    assert {
        (b.pk, "billing_profile_shared"), (a.pk, "billing_profile_shared"),
        (b.pk, "billing_profile_detached"), (a.pk, "billing_profile_detached"),
    } <= kinds  # fmt: skip
    # A second detach changes nothing and makes no customer.
    customers = len(stripe_client.v1.customers.list({"limit": 100}).data)
    page = signed_in_client.post(DETACH, follow=True).content.decode()
    assert "its own billing profile already" in page
    assert len(stripe_client.v1.customers.list({"limit": 100}).data) == customers


def test_a_sharing_account_with_a_live_plan_cannot_detach_and_a_subscribed_one_cannot_share(
    signed_in_client,
    membership,
    other_membership,
    second_account,
    stripe_emulator,
    clock,  # noqa: F811
):
    a, b = membership.customer, second_account
    end_trial(a)
    upgrade(signed_in_client, stripe_emulator, "pro")  # A subscribed on its own profile
    stripe_emulator.deliver()
    signed_in_client.post(SWITCH, {"customer_id": a.customer_id})
    page = signed_in_client.post(SHARE, {"payer": b.customer_id}, follow=True).content.decode()
    assert "once the plan has ended" in page
    assert BillingInfo.objects.for_customer(b) is None  # nothing made for B either

    share(signed_in_client, b, a)
    end_trial(b)
    upgrade(signed_in_client, stripe_emulator, "starter")
    stripe_emulator.deliver()
    before = list(CustomerBilling.objects.values_list("customer_id", "billing_info_id"))
    page = signed_in_client.post(DETACH, follow=True).content.decode()
    assert "once the plan has ended" in page
    assert list(CustomerBilling.objects.values_list("customer_id", "billing_info_id")) == before


def test_sharing_a_profile_one_does_not_own_is_a_403_and_only_its_owners_manage_cards(
    client,
    membership,
    other_membership,
    second_account,
    stripe_emulator,
    clock,  # noqa: F811
):
    a, b = membership.customer, second_account
    # Owner of B, but only billing contact of A: may not make B pay with A's profile.
    colleague = MembershipFactory(customer=b, role=Membership.Role.OWNER).user
    MembershipFactory(user=colleague, customer=a, role=Membership.Role.BILLING)
    client.force_login(colleague)
    before = list(CustomerBilling.objects.values_list("customer_id", "billing_info_id"))
    for payer in (a, other_membership.customer):
        assert share(client, b, payer).status_code == 403
    assert client.post(SHARE, {"payer": "cust_nonsense"}).status_code == 403
    assert list(CustomerBilling.objects.values_list("customer_id", "billing_info_id")) == before

    # The owner of both shares; B's other owner sees whose cards they are, and cannot
    # manage them.
    owner = Client()
    owner.force_login(membership.user)
    assert share(owner, b, a).status_code == 302
    client.post(SWITCH, {"customer_id": b.customer_id})
    page = client.get(reverse("billing:payment_methods"))
    assert page.status_code == 200
    assert "Only its owners manage them" in page.content.decode()
    assert client.post(reverse("billing:payment_method_add")).status_code == 403
    assert client.get(reverse("billing:details")).status_code == 403
    assert client.post(DETACH).status_code == 302  # but B's owner may take B back
    assert BillingInfo.objects.for_customer(b) != BillingInfo.objects.for_customer(a)


def test_with_billing_disabled_the_profile_pages_say_so(signed_in_client, settings):
    settings.BILLING_ENABLED = False
    assert signed_in_client.get(reverse("billing:profile")).status_code == 501
    assert signed_in_client.post(SHARE, {"payer": "cust_x"}).status_code == 501
    assert signed_in_client.post(DETACH).status_code == 501
    assert not CustomerBilling.objects.exists()


def test_once_its_plan_has_ended_a_sharing_account_detaches_and_its_paid_invoices_stay(
    signed_in_client,
    membership,
    other_membership,
    second_account,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    a, b = membership.customer, second_account
    share(signed_in_client, b, a)
    shared = BillingInfo.objects.for_customer(a).stripe_id
    end_trial(b)
    upgrade(signed_in_client, stripe_emulator, "starter")
    stripe_emulator.deliver()
    plan = CustomerPlan.objects.get(customer=b)
    signed_in_client.post(reverse("billing:plan_cancel"), {"confirm": "yes"})
    stripe_emulator.deliver()
    stripe_emulator.advance_clock(clock.id, int(plan.current_period_end.timestamp()) + DAY)
    assert CustomerPlan.objects.get(customer=b).status == CustomerPlan.Status.CANCELED

    paid = [
        invoice.id
        for invoice in stripe_client.v1.invoices.list({"customer": shared}).data
        if invoice.parent.subscription_details.metadata.customer_id == b.customer_id
        and invoice.status == "paid"
    ]
    assert paid, "B's first invoice was paid on A's Stripe customer"
    ours = list(Invoice.objects.filter(customer=b).values_list("pk", "stripe_invoice_id", "total"))

    assert signed_in_client.post(DETACH).status_code == 302
    own = BillingInfo.objects.for_customer(b).stripe_id
    assert own != shared
    for invoice_id in paid:
        invoice = stripe_client.v1.invoices.retrieve(invoice_id)
        assert (invoice.customer, invoice.status) == (shared, "paid")
    assert stripe_client.v1.invoices.list({"customer": own}).data == []
    assert (
        list(Invoice.objects.filter(customer=b).values_list("pk", "stripe_invoice_id", "total"))
        == ours
    )
    assert BillingInfo.objects.for_customer(a).stripe_id == shared
