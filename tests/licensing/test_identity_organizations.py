"""Identity-provider organizations: the token's organization claim (OIDC_ORG_CLAIM) maps
/api/v1/me/ and the token sign-in to the account linked to it; a verified member of the
organization without a membership gets one with OIDC_ORG_DEFAULT_ROLE, recorded. An
organization linked to nothing leaves the person's own memberships to decide and creates
nothing. Two accounts (A: `membership`, B: `other_membership`) are present throughout."""

import pytest
from django.urls import reverse

from accounts.models import IdentityOrganization, Membership
from audit.models import Entry
from tests.licensing.test_me_api import idp, me, token  # noqa: F401

SESSION = reverse("api_me_session")


@pytest.fixture
def orgs(settings, membership, other_membership):
    settings.OIDC_ORG_CLAIM = "org_id"
    IdentityOrganization.objects.create(org_id="org_globex", customer=other_membership.customer)


def state() -> tuple:
    return (
        sorted(Membership.objects.values_list("user_id", "customer_id", "role")),
        Entry.objects.count(),
    )


def test_a_verified_member_of_a_linked_organization_joins_its_account_once(
    client,
    idp,  # noqa: F811
    orgs,
    membership,
    other_membership,
):
    b = other_membership.customer
    response = me(client, token(idp, org_id="org_globex"))
    assert response.status_code == 200
    assert (response.json()["account"]["customer_id"], response.json()["account"]["role"]) == (
        b.customer_id,
        "member",
    )
    joined = Membership.objects.get(user=membership.user, customer=b)
    entry = Entry.objects.get(customer=b, kind="member_joined_from_identity_provider")
    assert (entry.actor, entry.data["org_id"], entry.data["role"]) == (
        membership.user, "org_globex", "member",
    )  # fmt: skip
    before = state()
    assert me(client, token(idp, org_id="org_globex")).json()["account"]["customer_id"] == (
        b.customer_id
    )
    assert state() == before and Membership.objects.get(pk=joined.pk).role == "member"
    # Without the claim the person's own account answers again.
    own = me(client, token(idp)).json()["account"]
    assert own["customer_id"] == membership.customer_id


def test_the_default_role_is_a_setting_and_an_existing_role_is_kept(
    client,
    settings,
    idp,  # noqa: F811
    orgs,
    membership,
    other_membership,
):
    settings.OIDC_ORG_DEFAULT_ROLE = "billing"
    answer = me(client, token(idp, org_id="org_globex")).json()["account"]
    assert answer["role"] == "billing"
    # The owner of B with the org claim stays owner.
    before = state()
    answer = me(client, token(idp, email="someone-else@example.com", org_id="org_globex"))
    assert answer.json()["account"]["role"] == "owner"
    assert state() == before


def test_an_organization_linked_to_nothing_creates_nothing(
    client,
    settings,
    idp,  # noqa: F811
    orgs,
    membership,
    other_membership,
):
    before = state()
    for claim in ("org_unknown", "", 42, None):
        answer = me(client, token(idp, org_id=claim))
        assert answer.status_code == 200
        assert answer.json()["account"]["customer_id"] == membership.customer_id
    # The setting off: the claim is not read at all.
    settings.OIDC_ORG_CLAIM = ""
    assert me(client, token(idp, org_id="org_globex")).json()["account"]["customer_id"] == (
        membership.customer_id
    )
    # An unverified address is refused before any organization is looked at.
    settings.OIDC_ORG_CLAIM = "org_id"
    assert me(client, token(idp, org_id="org_globex", email_verified=False)).status_code == 401
    assert state() == before


def test_a_token_sign_in_opens_a_session_in_the_organizations_account(
    client,
    idp,  # noqa: F811
    orgs,
    membership,
    other_membership,
):
    b = other_membership.customer
    assert client.post(SESSION).status_code == 401
    response = client.post(SESSION, HTTP_AUTHORIZATION=f"Bearer {token(idp, org_id='org_globex')}")
    assert response.status_code == 200 and response.json() == {"customer_id": b.customer_id}
    home = client.get(reverse("home")).content.decode()
    assert f'id="customer-id">{b.customer_id}<' in home
    assert f'id="customer-id">{membership.customer_id}<' not in home
    # A member of B only: B's billing pages are not theirs to manage.
    assert client.get(reverse("billing:payment_methods")).status_code in (403, 501)


def test_graphqls_viewer_is_the_organizations_account_too(
    client,
    idp,  # noqa: F811
    orgs,
    membership,
    other_membership,
):
    query = {"query": "query { viewer { customerId } }"}
    for claims, expected in [
        ({"org_id": "org_globex"}, other_membership.customer_id),
        ({"org_id": "org_unknown"}, membership.customer_id),
        ({}, membership.customer_id),
    ]:
        response = client.post(
            "/api/graphql/",
            query,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token(idp, **claims)}",
        )
        assert response.json()["data"]["viewer"]["customerId"] == expected, claims
