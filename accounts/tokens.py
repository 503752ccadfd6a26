"""The signed link that confirms a user's email address.

The token names the user and the address it was sent to, signed with SECRET_KEY and
timestamped: it expires after EMAIL_VERIFICATION_MAX_AGE, stops working once the address is
confirmed (so each link works once), and stops working if the user's email changes.
"""

from datetime import timedelta

from django.core import signing

from .models import User

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
