"""An account's members: owners invite by email with a role, the signed single-use link
signs the invitee up or adds the account to their login, owners change roles and remove,
the last owner stays. Bad links show a clear page and change nothing. A second account
(`other_membership`) is in every test, and its members are never reachable."""

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.members import (
    INVITATIONS_PER_ACCOUNT,
    LastOwner,
    invitation_create,
    membership_remove,
    membership_role_change,
)
from accounts.models import Invitation, Membership, User
from audit.models import Entry
from licensing.catalog import catalog_read
from licensing.notifications import customer_billing_contacts, plan_email_send
from licensing.services import catalog_load
from tests.accounts.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the invitation email is sent on commit

MEMBERS = reverse("members")
NEW_PASSWORD = "a-long-new-password-42"


def invite(client, email: str, role: str = "member"):
    return client.post(MEMBERS, {"email": email, "role": role})


def emailed_link(to: str) -> str:
    [message] = [m for m in mail.outbox if to.lower() in [a.lower() for a in m.to]]
    return re.search(r"https?://\S+/account/invitations/\S+/", message.body).group(0)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def state() -> tuple:
    return (
        sorted(Membership.objects.values_list("user__email", "customer_id", "role")),
        User.objects.count(),
        sorted(Invitation.objects.values_list("pk", "accepted_at")),
    )


def test_an_owner_invites_and_a_new_address_signs_up_through_the_emailed_link(
    signed_in_client, membership, other_membership
):
    response = invite(signed_in_client, "new.person@example.com", "billing")
    assert response.status_code == 302
    customer = membership.customer
    entry = Entry.objects.get(customer=customer, kind="member_invited")
    assert entry.actor == membership.user and "new.person@example.com" in entry.sentence
    link = emailed_link("new.person@example.com")
    assert "Acme Ltd" in mail.outbox[-1].subject

    invitee = Client()
    page = invitee.get(path_of(link))
    assert (
        page.status_code == 200 and 'as <strong id="invited-role">billing' in page.content.decode()
    )
    joined = invitee.post(path_of(link), {"password": NEW_PASSWORD}, follow=True)
    assert joined.status_code == 200
    user = User.objects.get(email="new.person@example.com")
    assert user.is_email_verified, "the link proves the address"
    assert list(user.memberships.values_list("customer_id", "role")) == [
        (customer.customer_id, "billing")
    ]
    home = joined.content.decode()
    assert customer.customer_id in home and "(billing)" in home
    assert Entry.objects.filter(customer=customer, kind="member_joined", actor=user).exists()
    assert (
        not Entry.objects.filter(customer=other_membership.customer)
        .exclude(kind="account_opened")
        .exists()
    )
    # Billing contacts get billing emails; plain members do not.
    MembershipFactory(customer=customer, role="member", user__email="plain@example.com")
    assert sorted(customer_billing_contacts(customer=customer)) == [
        "new.person@example.com",
        "owner@example.com",
    ]
    catalog_load(catalog=catalog_read())
    mail.outbox.clear()
    plan_email_send(customer_id=customer.customer_id, template="plan_activated", plan_code="pro")
    assert sorted(address for m in mail.outbox for address in m.to) == [
        "new.person@example.com",
        "owner@example.com",
    ]

    # The link works once.
    before = state()
    again = Client().post(path_of(link), {"password": NEW_PASSWORD})
    assert again.status_code == 400 and "used already" in again.content.decode()
    assert state() == before


def test_an_existing_login_accepts_and_the_account_is_added_to_it(
    signed_in_client, membership, other_membership
):
    invite(signed_in_client, "Someone-Else@example.com", "member")
    link = path_of(emailed_link("someone-else@example.com"))
    invitee = Client()
    page = invitee.get(link)
    assert "sign in" in page.content.decode() and "password" not in page.context
    assert invitee.login(email="someone-else@example.com", password=PASSWORD)
    assert invitee.get(link).status_code == 200
    home = invitee.post(link, follow=True)
    assert membership.customer.customer_id in home.content.decode()
    assert sorted(other_membership.user.memberships.values_list("customer_id", "role")) == sorted(
        [
            (other_membership.customer_id, "owner"),
            (membership.customer_id, "member"),
        ]
    )


def test_expired_tampered_used_or_foreign_invitations_change_nothing(
    signed_in_client, membership, other_membership
):
    with time_machine.travel(timezone.now() - timedelta(days=8), tick=False):
        invite(signed_in_client, "late@example.com")
    expired = path_of(emailed_link("late@example.com"))
    invite(signed_in_client, "fresh@example.com")
    fresh = path_of(emailed_link("fresh@example.com"))
    before = state()

    for link, reason in [
        (expired, "has expired"),
        (fresh[:-3] + "xx/", "does not work"),
        ("/account/invitations/not-a-token/", "does not work"),
    ]:
        for method in ("get", "post"):
            response = getattr(Client(), method)(link, {"password": NEW_PASSWORD})
            assert response.status_code == 400, (link, method)
            assert reason in response.content.decode()
    assert state() == before

    # Signed in as another address: refused, nothing changed.
    other = Client()
    other.force_login(other_membership.user)
    assert other.post(fresh).status_code == 403
    assert state() == before


def test_inviting_an_existing_member_is_a_form_error(
    signed_in_client, membership, other_membership
):
    MembershipFactory(customer=membership.customer, user__email="colleague@example.com")
    before = Invitation.objects.count()
    response = invite(signed_in_client, "COLLEAGUE@example.com")
    assert response.status_code == 400
    assert "member of the account already" in response.content.decode()
    assert Invitation.objects.count() == before and not mail.outbox
    # A member of another account is not a member here: invited as usual.
    assert invite(signed_in_client, "someone-else@example.com").status_code == 302


def test_only_owners_invite_change_roles_and_remove(client, membership, other_membership):
    member = MembershipFactory(customer=membership.customer, role="member")
    billing = MembershipFactory(customer=membership.customer, role="billing")
    for someone in (member, billing):
        client.force_login(someone.user)
        assert client.get(MEMBERS).status_code == 200  # everyone sees who is in
        assert invite(client, "x@example.com").status_code == 403
        assert (
            client.post(reverse("member_role", args=[membership.pk]), {"role": "member"})
        ).status_code == 403
        assert client.post(reverse("member_remove", args=[membership.pk])).status_code == 403
    assert not Invitation.objects.exists()
    assert Membership.objects.get(pk=membership.pk).role == "owner"
    # Members see the product side, not billing pages.
    client.force_login(member.user)
    assert client.get(reverse("billing:payment_methods")).status_code in (403, 501)
    assert client.get(reverse("license")).status_code == 200


def test_owners_change_roles_and_remove_and_the_last_owner_stays(
    signed_in_client, membership, other_membership
):
    colleague = MembershipFactory(customer=membership.customer, role="member")
    role_url = reverse("member_role", args=[colleague.pk])
    assert signed_in_client.post(role_url, {"role": "owner"}).status_code == 302
    assert Membership.objects.get(pk=colleague.pk).role == "owner"
    entry = Entry.objects.get(kind="member_role_changed")
    assert (entry.customer_id, entry.data["role"], entry.data["previous_role"]) == (
        membership.customer_id, "owner", "member",
    )  # fmt: skip

    # Two owners: one may step down; then the other is the last and may not.
    me = reverse("member_role", args=[membership.pk])
    assert signed_in_client.post(me, {"role": "billing"}).status_code == 302
    colleague_client = Client()
    colleague_client.force_login(colleague.user)
    page = colleague_client.post(
        reverse("member_role", args=[colleague.pk]), {"role": "member"}, follow=True
    )
    assert "needs an owner" in page.content.decode()
    assert Membership.objects.get(pk=colleague.pk).role == "owner"
    page = colleague_client.post(reverse("member_remove", args=[colleague.pk]), follow=True)
    assert "needs an owner" in page.content.decode()
    assert Membership.objects.filter(pk=colleague.pk).exists()
    assert colleague_client.post(me, {"role": "nonsense"}).status_code == 302
    assert Membership.objects.get(pk=membership.pk).role == "billing"

    # The owner removes the former owner; a member leaves on their own.
    assert colleague_client.post(reverse("member_remove", args=[membership.pk])).status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert Entry.objects.filter(kind="member_removed", data__user=membership.user_id).exists()
    leaver = MembershipFactory(customer=colleague.customer, role="member")
    leaver_client = Client()
    leaver_client.force_login(leaver.user)
    assert leaver_client.post(reverse("member_remove", args=[leaver.pk])).status_code == 302
    assert Entry.objects.filter(kind="member_left", actor=leaver.user).exists()


def test_another_accounts_members_are_not_reachable(signed_in_client, membership, other_membership):
    stranger = MembershipFactory(customer=other_membership.customer, role="member")
    for url, data in [
        (reverse("member_role", args=[stranger.pk]), {"role": "owner"}),
        (reverse("member_role", args=[other_membership.pk]), {"role": "member"}),
        (reverse("member_remove", args=[stranger.pk]), {}),
    ]:
        assert signed_in_client.post(url, data).status_code == 404
    assert sorted(other_membership.customer.memberships.values_list("role", flat=True)) == [
        "member",
        "owner",
    ]
    page = signed_in_client.get(MEMBERS).content.decode()
    assert stranger.user.email not in page and "someone-else@example.com" not in page


def test_an_invitation_to_another_account_does_not_open_this_one(
    client, membership, other_membership
):
    """The service too: an invitation adds exactly its own account."""
    invitation = invitation_create(
        customer=other_membership.customer,
        email="newbie@example.com",
        role="member",
        invited_by=other_membership.user,
    )
    link = path_of(emailed_link("newbie@example.com"))
    client.post(link, {"password": NEW_PASSWORD})
    user = User.objects.get(email="newbie@example.com")
    assert list(user.memberships.values_list("customer_id", flat=True)) == [invitation.customer_id]
    assert not membership.customer.memberships.filter(user=user).exists()
    assert UserFactory._meta.model.objects.filter(pk=user.pk).exists()


def test_two_owners_demoting_each_other_at_once_leave_one_owner(membership, other_membership):
    """Each thread commits for real; whatever the interleaving, one owner is left."""
    for attempt in range(5):
        customer = MembershipFactory(customer__name=f"Duo {attempt}").customer
        first = customer.memberships.get()
        second = MembershipFactory(customer=customer, role="owner")
        barrier = threading.Barrier(2)
        refused = []

        def demote(target, actor, remove, barrier=barrier, refused=refused):
            try:
                barrier.wait()
                if remove:
                    membership_remove(membership=target, actor=actor)
                else:
                    membership_role_change(membership=target, role="member", actor=actor)
            except LastOwner:
                refused.append(target.pk)
            finally:
                connection.close()

        threads = [
            threading.Thread(target=demote, args=(first, second.user, attempt % 2)),
            threading.Thread(target=demote, args=(second, first.user, False)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert customer.memberships.filter(role="owner").count() == 1, attempt
        assert len(refused) == 1
    assert other_membership.customer.memberships.get().role == "owner"


def test_invitations_wait_for_a_confirmed_address_and_are_rate_limited(
    client, membership, other_membership
):
    unverified = MembershipFactory(user__email_verified_at=None, role="owner")
    client.force_login(unverified.user)
    assert invite(client, "x@example.com").status_code == 403
    assert not Invitation.objects.exists()

    client.force_login(membership.user)
    # Within one hour of the limit's window, whatever the hour of the run.
    with time_machine.travel(datetime(2026, 3, 1, 10, 10, tzinfo=UTC), tick=False):
        for n in range(INVITATIONS_PER_ACCOUNT):
            assert invite(client, f"person{n}@example.com").status_code == 302
        response = invite(client, "one-too-many@example.com")
        assert response.status_code == 400 and "Too many invitations" in response.content.decode()
        assert Invitation.objects.count() == INVITATIONS_PER_ACCOUNT
        # Another account's owner is not held back by this one's invitations.
        client.force_login(other_membership.user)
        assert invite(client, "globex-new@example.com").status_code == 302


def test_the_members_page_costs_the_same_queries_with_2_and_12_members(
    signed_in_client, membership, other_membership, settings
):
    settings.BILLING_ENABLED = False  # and it works with billing disabled

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert signed_in_client.get(MEMBERS).status_code == 200
        return len(captured.captured_queries)

    MembershipFactory(customer=membership.customer, role="member")
    invite(signed_in_client, "pending0@example.com")
    few = queries()
    for n in range(10):
        MembershipFactory(customer=membership.customer, role="billing")
        invite(signed_in_client, f"pending{n + 1}@example.com")
    assert queries() == few


def test_two_clicks_on_one_invitation_at_once_make_one_member(
    signed_in_client, membership, other_membership
):
    invite(signed_in_client, "racer@example.com", "billing")
    link = path_of(emailed_link("racer@example.com"))
    barrier = threading.Barrier(4)
    statuses = []

    def accept() -> None:
        try:
            barrier.wait()
            statuses.append(Client().post(link, {"password": NEW_PASSWORD}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One joins; each other click finds the link used (400) or, once the new login is
    # committed, the page that asks to sign in (200): neither changes anything.
    assert statuses.count(302) == 1 and len(statuses) == 4
    assert set(statuses) - {302} <= {200, 400}
    assert User.objects.filter(email__iexact="racer@example.com").count() == 1
    assert membership.customer.memberships.filter(user__email="racer@example.com").count() == 1
    assert Entry.objects.filter(kind="member_joined").count() == 1
