"""The IDOR sweep for people in several accounts: a person who is owner of A and billing
contact of B works in one at a time, chosen with the header's switcher. Every customer
page and /api/v1/me/ show the current account only; an id of the other account is a 404
there; switching to an account one is not a member of is a 404 that changes nothing."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership
from billing.models import Invoice
from tests.accounts.factories import MembershipFactory
from tests.billing.test_invoice_pages import (  # noqa: F401
    catalog,
    customer,
    finalized_invoices,
    frozen_clock,
)

SWITCH = reverse("account_switch")
PAGES = [
    "home",
    "license",
    "members",
    "api_me",
    "billing:overview",
    "billing:usage",
    "billing:invoices",
    "billing:plans",
    "billing:payment_methods",
]


@pytest.fixture
def person(signed_in_client, membership, other_membership, customer):  # noqa: F811
    """Owner of A (membership) and billing contact of B (the other account)."""
    MembershipFactory(
        user=membership.user, customer=other_membership.customer, role=Membership.Role.BILLING
    )
    finalized_invoices(customer, 1)
    finalized_invoices(other_membership.customer, 1)
    return signed_in_client


def sweep(client) -> str:
    """Every page's text without the header (whose switcher names every account), joined;
    each must answer 200."""
    seen = []
    for name in PAGES:
        response = client.get(reverse(name))
        assert response.status_code == 200, (name, response.status_code)
        seen.append(re.sub(r"<header.*?</header>", "", response.content.decode(), flags=re.S))
    return "\n".join(seen)


def detail_urls(account) -> list[str]:
    return [
        reverse("billing:invoice_detail", args=[pk])
        for pk in Invoice.objects.filter(customer=account).values_list("pk", flat=True)
    ]


def test_a_member_of_two_accounts_sees_only_the_current_one(
    person, membership, other_membership, stripe_emulator
):
    a, b = membership.customer, other_membership.customer
    seen = sweep(person)
    assert a.customer_id in seen and b.customer_id not in seen  # the oldest: their own
    header = person.get(reverse("home")).content.decode()
    assert 'id="account-switcher"' in header and b.customer_id in header
    for url in detail_urls(a):
        assert person.get(url).status_code == 200
    for url in detail_urls(b):
        assert person.get(url).status_code == 404

    assert person.post(SWITCH, {"customer_id": b.customer_id}).status_code == 302
    seen = sweep(person)
    assert b.customer_id in seen and a.customer_id not in seen
    me = person.get(reverse("api_me")).json()
    assert (me["account"]["customer_id"], me["account"]["role"]) == (b.customer_id, "billing")
    for url in detail_urls(b):
        assert person.get(url).status_code == 200
    for url in detail_urls(a):
        assert person.get(url).status_code == 404
    # The member list is B's; A's members (and their ids) are not reachable from here.
    members = person.get(reverse("members")).content.decode()
    assert "someone-else@example.com" in members
    owner_of_a = Membership.objects.filter(customer=a).exclude(user=membership.user).first()
    assert owner_of_a is None or owner_of_a.user.email not in members
    # A billing contact in B is not an owner there: no member management.
    assert (
        person.post(reverse("members"), {"email": "x@example.com", "role": "member"}).status_code
        == 403
    )


def test_switching_to_an_account_one_is_not_in_is_a_404_and_changes_nothing(
    person, membership, other_membership
):
    b = other_membership.customer
    person.post(SWITCH, {"customer_id": b.customer_id})
    stranger = MembershipFactory(customer__name="Initech")
    for value in [stranger.customer_id, "", "cust_nonsense", membership.customer_id + "x"]:
        assert person.post(SWITCH, {"customer_id": value}).status_code == 404
    assert person.get(reverse("api_me")).json()["account"]["customer_id"] == b.customer_id
    assert person.get(SWITCH).status_code == 405


def test_a_member_removed_from_the_current_account_falls_back_to_their_own(
    person, membership, other_membership
):
    b = other_membership.customer
    person.post(SWITCH, {"customer_id": b.customer_id})
    Membership.objects.filter(user=membership.user, customer=b).delete()
    seen = sweep(person)
    assert membership.customer.customer_id in seen and b.customer_id not in seen
    assert 'id="account-switcher"' not in person.get(reverse("home")).content.decode()


def test_pages_cost_the_same_queries_with_two_accounts_as_with_six(
    person, membership, other_membership
):
    def queries(url) -> int:
        person.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert person.get(url).status_code == 200
        return len(captured.captured_queries)

    urls = [reverse(name) for name in PAGES]
    with_two = [queries(url) for url in urls]
    for n in range(4):
        MembershipFactory(user=membership.user, customer__name=f"Extra {n}", role="member")
    assert [queries(url) for url in urls] == with_two


def test_a_plain_member_of_b_sees_the_product_side_of_b_and_no_billing_page(
    signed_in_client,
    membership,
    other_membership,
    customer,  # noqa: F811
):
    a, b = membership.customer, other_membership.customer
    MembershipFactory(user=membership.user, customer=b, role=Membership.Role.MEMBER)
    finalized_invoices(customer, 1)
    signed_in_client.post(SWITCH, {"customer_id": b.customer_id})
    for name in ["home", "license", "members", "api_me", "billing:overview"]:
        response = signed_in_client.get(reverse(name))
        assert response.status_code == 200, name
        body = re.sub(r"<header.*?</header>", "", response.content.decode(), flags=re.S)
        assert a.customer_id not in body, name
    assert signed_in_client.get(reverse("api_me")).json()["account"]["role"] == "member"
    for name in ["billing:usage", "billing:invoices", "billing:plans", "billing:payment_methods"]:
        assert signed_in_client.get(reverse(name)).status_code == 403, name
    for url in detail_urls(a):
        assert signed_in_client.get(url).status_code in (403, 404)
    # Back in A, the owner's pages are all there again.
    signed_in_client.post(SWITCH, {"customer_id": a.customer_id})
    assert a.customer_id in sweep(signed_in_client)


def test_the_unpaid_invoice_banner_is_the_current_accounts(
    signed_in_client,
    membership,
    other_membership,
    customer,  # noqa: F811
):
    from billing.models import BillingInfo, InvoiceRecovery

    a, b = membership.customer, other_membership.customer
    MembershipFactory(user=membership.user, customer=b, role=Membership.Role.BILLING)
    billing_info = BillingInfo.objects.create(stripe_id="cus_a1")
    InvoiceRecovery.objects.create(
        stripe_invoice_id="in_unpaid_a",
        billing_info=billing_info,
        customer=a,
        amount=4900,
        currency="eur",
        failed_at=customer.created_at,
        hosted_invoice_url="https://invoice.example/a",
    )
    assert "https://invoice.example/a" in signed_in_client.get(reverse("home")).content.decode()
    signed_in_client.post(SWITCH, {"customer_id": b.customer_id})
    assert "https://invoice.example/a" not in signed_in_client.get(reverse("home")).content.decode()
