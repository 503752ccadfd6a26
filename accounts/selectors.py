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


def request_memberships(request: HttpRequest, *, user: User | None = None) -> list[Membership]:
    """`user_memberships` of the request's user (or `user`), read once per request (the
    page and the header's switcher share it)."""
    user = user or request.user
    cached = getattr(request, "_account_memberships", None)
    if cached is None or cached[0] != user.pk:
        cached = (user.pk, user_memberships(user=user))
        request._account_memberships = cached
    return cached[1]


def current_membership(
    request: HttpRequest, *, user: User | None = None, auth: object = None
) -> Membership | None:
    """The membership (and customer account) this request works in; every page and API
    for the signed-in customer asks this, so nothing of another account is reachable.

    In order: the account an identity token's organization maps to, the account chosen
    in this session with the switcher, else the user's oldest (for a user who signed up,
    the account they own). A choice the user is no longer a member of is ignored.

    `user` and `auth` are for callers that authenticate outside Django's and DRF's
    request (GraphQL): the user and the credentials (an identity token) they found.
    """
    memberships = request_memberships(request, user=user)
    if not memberships:
        return None
    by_customer = {membership.customer_id: membership for membership in memberships}
    token_account = getattr(auth or getattr(request, "auth", None), "customer_id", None)
    session = getattr(request, "session", None)
    for chosen in (token_account, session.get(CURRENT_ACCOUNT_SESSION_KEY) if session else None):
        if chosen in by_customer:
            return by_customer[chosen]
    return memberships[0]
