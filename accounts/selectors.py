"""Reads for accounts, and the one answer to "which account is this request working in"."""

from django.http import HttpRequest

from .models import Membership, User

# The session key holding the customer id the header's switcher chose.
CURRENT_ACCOUNT_SESSION_KEY = "current_customer_id"


def user_memberships(*, user: User) -> list[Membership]:
    """Every account the user belongs to, oldest first, with its customer: one query."""
    if not user.is_authenticated:
        return []
    return list(Membership.objects.filter(user=user).select_related("customer"))


def request_memberships(request: HttpRequest) -> list[Membership]:
    """`user_memberships` of the request's user, read once per request (the page and the
    header's switcher share it)."""
    cached = getattr(request, "_account_memberships", None)
    if cached is None:
        cached = user_memberships(user=request.user)
        request._account_memberships = cached
    return cached


def current_membership(request: HttpRequest) -> Membership | None:
    """The membership (and customer account) this request works in; every page and API
    for the signed-in customer asks this, so nothing of another account is reachable.

    In order: the account an identity token's organization maps to, the account chosen
    in this session with the switcher, else the user's oldest (for a user who signed up,
    the account they own). A choice the user is no longer a member of is ignored.
    """
    memberships = request_memberships(request)
    if not memberships:
        return None
    by_customer = {membership.customer_id: membership for membership in memberships}
    token_account = getattr(getattr(request, "auth", None), "customer_id", None)
    session = getattr(request, "session", None)
    for chosen in (token_account, session.get(CURRENT_ACCOUNT_SESSION_KEY) if session else None):
        if chosen in by_customer:
            return by_customer[chosen]
    return memberships[0]
