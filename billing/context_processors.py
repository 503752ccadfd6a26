from django.conf import settings
from django.utils.functional import SimpleLazyObject

from accounts.models import Membership
from accounts.selectors import current_membership

BILLING_ROLES = {Membership.Role.OWNER, Membership.Role.BILLING}


def billing(request) -> dict:
    """Lets every page know whether billing is switched on (a Stripe key is set), and the
    signed-in billing contact's unpaid invoice, if any (one query, made when a page shows
    the banner; it reads only)."""
    return {
        "billing_enabled": settings.BILLING_ENABLED,
        "payment_due": SimpleLazyObject(lambda: _payment_due(request)),
    }


def _payment_due(request):
    from .models import InvoiceRecovery

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    # The current account's only (a person in several sees the one they work in), and for
    # its billing contacts only; the memberships are the page's own read.
    membership = current_membership(request)
    if membership is None or membership.role not in BILLING_ROLES:
        return None
    return (
        InvoiceRecovery.objects.filter(
            status=InvoiceRecovery.Status.OPEN, customer_id=membership.customer_id
        )
        .only("amount", "currency", "failed_at", "hosted_invoice_url")
        .order_by("failed_at", "id")
        .first()
    )
