"""Writes for an account's members: invitations by email, accepting them (signing up or
with an existing login), role changes and removals. Every change is in the account's
audit timeline. An account always keeps an owner: the last one cannot leave or be
demoted, even when two owners demote each other at once (the account row is locked)."""

from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, Q
from django.utils import timezone

from audit.ledger import Source, entry_record

from . import tasks
from .models import Customer, IdentityOrganization, Invitation, Membership, User
from .services import email_verify
from .throttling import rate_limit_hit

Role = Membership.Role


# Invitations one account may send in an hour: each is an email to an address of the
# owner's choosing, so the members page cannot be used to flood an inbox.
INVITATIONS_PER_ACCOUNT = 20
HOUR = 60 * 60


class TooManyInvitations(Exception):
    """The account sent INVITATIONS_PER_ACCOUNT invitations this hour already."""


class AlreadyMember(Exception):
    """The address belongs to a member of the account already."""


class LastOwner(Exception):
    """The change would leave the account without an owner."""


class InvitationUnusable(Exception):
    """Accepted meanwhile (a second click, another tab), or the person is a member already."""


class InvitationForAnotherAddress(Exception):
    """The signed-in user is not the invited address: the link is for its reader only."""


def _record(customer_id: str, kind: str, actor: User | None, sentence: str, **data) -> None:
    entry_record(
        customer_id=customer_id,
        kind=kind,
        source=Source.CUSTOMER,
        actor=actor,
        sentence=sentence,
        data=data,
    )


def invitation_create(*, customer: Customer, email: str, role: str, invited_by: User) -> Invitation:
    """Invite an address to the account with a role, and email it the link."""
    email = User.objects.normalize_email(email.strip())
    if Membership.objects.filter(customer=customer, user__email__iexact=email).exists():
        raise AlreadyMember(email)
    if rate_limit_hit(
        scope="invitation", key=customer.customer_id, limit=INVITATIONS_PER_ACCOUNT, window=HOUR
    ):
        raise TooManyInvitations()
    with transaction.atomic():
        invitation = Invitation.objects.create(
            customer=customer, email=email, role=role, invited_by=invited_by
        )
        _record(
            customer.customer_id,
            "member_invited",
            invited_by,
            f"{email} invited as {Role(role).label.lower()}.",
            invitation=invitation.pk,
            role=role,
        )
        transaction.on_commit(
            partial(tasks.invitation_email_send.delay, invitation_id=invitation.pk)
        )
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Add the account to the user's login with the invitation's role. The link proves
    the user reads the invited address's mail, so it also confirms that address. Works
    once: the acceptance is a conditional update, so two clicks cannot both use it."""
    if user.email.lower() != invitation.email.lower():
        raise InvitationForAnotherAddress(invitation.pk)
    now = timezone.now()
    used = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
        accepted_at=now, accepted_by=user
    )
    if not used:
        raise InvitationUnusable(invitation.pk)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                user=user, customer=invitation.customer, role=invitation.role
            )
    except IntegrityError as exc:  # a member already: the outer transaction undoes the use
        raise InvitationUnusable(invitation.pk) from exc
    email_verify(user=user, now=now)
    _record(
        invitation.customer_id,
        "member_joined",
        user,
        f"{user.email} joined as {membership.get_role_display().lower()}.",
        invitation=invitation.pk,
        user=user.pk,
        role=membership.role,
    )
    return membership


@transaction.atomic
def invitation_signup(*, invitation: Invitation, password: str) -> Membership:
    """Sign up the invited address (no account of its own: they join the inviting one)."""
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=invitation.email, password=password)
    except IntegrityError as exc:  # signed up meanwhile: they accept with their login
        raise InvitationUnusable(invitation.pk) from exc
    return invitation_accept(invitation=invitation, user=user)


def _keeping_an_owner(membership: Membership):
    """This membership, only while another owner of its account remains. Used as the filter
    of the write itself, after locking the account row: on PostgreSQL the lock makes a
    concurrent demotion wait and then see this one; on SQLite (no row locks) the single
    UPDATE or DELETE statement checks and writes under the database's write lock."""
    Customer.objects.select_for_update().filter(pk=membership.customer_id).first()
    other_owners = Membership.objects.filter(
        customer_id=membership.customer_id, role=Role.OWNER
    ).exclude(pk=membership.pk)
    return Membership.objects.filter(pk=membership.pk).filter(
        Exists(other_owners) | ~Q(role=Role.OWNER)
    )


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str, actor: User) -> Membership:
    """Give a member another role; the last owner cannot be demoted."""
    membership = Membership.objects.select_related("user").get(pk=membership.pk)
    if membership.role == role:
        return membership
    before = membership.role
    if role != Role.OWNER and before == Role.OWNER:
        if not _keeping_an_owner(membership).update(role=role):
            raise LastOwner()
    else:
        Membership.objects.filter(pk=membership.pk).update(role=role)
    membership.role = role
    _record(
        membership.customer_id,
        "member_role_changed",
        actor,
        f"{membership.user.email} is now {Role(role).label.lower()} "
        f"(was {Role(before).label.lower()}).",
        user=membership.user_id,
        role=role,
        previous_role=before,
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User) -> None:
    """Remove a member (or leave, when the actor is the member); never the last owner."""
    membership = Membership.objects.select_related("user").filter(pk=membership.pk).first()
    if membership is None:
        return  # removed meanwhile
    deleted, _ = _keeping_an_owner(membership).delete()
    if not deleted:
        if Membership.objects.filter(pk=membership.pk).exists():
            raise LastOwner()
        return  # removed meanwhile
    leaving = actor.pk == membership.user_id
    _record(
        membership.customer_id,
        "member_left" if leaving else "member_removed",
        actor,
        f"{membership.user.email} left the account."
        if leaving
        else f"{membership.user.email} was removed from the account.",
        user=membership.user_id,
        role=membership.role,
    )


def identity_organization_membership(*, user: User, org_id: str) -> Membership | None:
    """The user's membership of the account linked to an identity-provider organization;
    a verified member of the organization (the caller checked the token) who is not a
    member yet joins with OIDC_ORG_DEFAULT_ROLE, recorded. None when the organization is
    linked to no account: nothing is created then."""
    organization = IdentityOrganization.objects.select_related("customer").filter(org_id=org_id)
    organization = organization.first()
    if organization is None:
        return None
    existing = Membership.objects.filter(user=user, customer=organization.customer).first()
    if existing is not None:
        return existing
    role = settings.OIDC_ORG_DEFAULT_ROLE
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                user=user, customer=organization.customer, role=role
            )
            _record(
                organization.customer_id,
                "member_joined_from_identity_provider",
                user,
                f"{user.email} joined as {Role(role).label.lower()} through the identity "
                f"provider's organization {org_id}.",
                user=user.pk,
                role=role,
                org_id=org_id,
            )
    except IntegrityError:  # a concurrent request made it
        return Membership.objects.get(user=user, customer=organization.customer)
    return membership
