from .selectors import current_membership, request_memberships


def accounts(request) -> dict:
    """The header's account switcher: the accounts of the signed-in person and the current
    one. Read only when a page shows them, once per request (the page's own read)."""
    return {
        "account_memberships": lambda: request_memberships(request),
        "current_account": lambda: current_membership(request),
    }
