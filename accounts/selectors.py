"""Reads for accounts."""

from .models import Membership, User


def current_membership(*, user: User) -> Membership | None:
    """The membership (and customer account) a signed-in user is working in.

    A user may belong to several accounts; until the portal offers a switcher this is the
    oldest one, which for a user who signed up is the account they own.
    """
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user).select_related("customer").first()
