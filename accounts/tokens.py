"""The signed links: the one that confirms a user's email address, and invitations.

The token names the user and the address it was sent to, signed with SECRET_KEY and
timestamped: it expires after EMAIL_VERIFICATION_MAX_AGE, stops working once the address is
confirmed (so each link works once), and stops working if the user's email changes.
"""

from datetime import timedelta

from django.core import signing

from .models import Invitation, User

SALT = "accounts.email_verification"
MAX_AGE = timedelta(days=3)


class VerificationLinkInvalid(Exception):
    """Tampered with, cut short, or for a user or address that no longer exists."""


class VerificationLinkExpired(Exception):
    """Genuine but older than MAX_AGE."""


def email_verification_token(*, user: User) -> str:
    return signing.dumps({"user": user.pk, "email": user.email.lower()}, salt=SALT)


def email_verification_user(*, token: str) -> User:
    """The user a genuine, unexpired token was made for (verified already or not)."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.SignatureExpired as exc:
        raise VerificationLinkExpired from exc
    except signing.BadSignature as exc:
        raise VerificationLinkInvalid from exc
    if not isinstance(data, dict):
        raise VerificationLinkInvalid
    user = User.objects.filter(pk=data.get("user"), is_active=True).first()
    if user is None or user.email.lower() != data.get("email"):
        raise VerificationLinkInvalid
    return user


# Invitations: the token names the invitation and the address it went to. It expires after
# INVITATION_MAX_AGE and works once (the invitation records its acceptance).
INVITATION_SALT = "accounts.invitation"
INVITATION_MAX_AGE = timedelta(days=7)


class InvitationUsed(Exception):
    """Genuine, but accepted already."""


def invitation_token(*, invitation: Invitation) -> str:
    return signing.dumps(
        {"invitation": invitation.pk, "email": invitation.email.lower()}, salt=INVITATION_SALT
    )


def invitation_from_token(*, token: str) -> Invitation:
    """The pending invitation a genuine, unexpired token was made for; raises
    VerificationLinkInvalid, VerificationLinkExpired or InvitationUsed."""
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise VerificationLinkExpired from exc
    except signing.BadSignature as exc:
        raise VerificationLinkInvalid from exc
    if not isinstance(data, dict) or not isinstance(data.get("invitation"), int):
        raise VerificationLinkInvalid
    invitation = (
        Invitation.objects.select_related("customer", "invited_by")
        .filter(pk=data["invitation"])
        .first()
    )
    if invitation is None or invitation.email.lower() != data.get("email"):
        raise VerificationLinkInvalid
    if invitation.is_accepted:
        raise InvitationUsed
    return invitation
