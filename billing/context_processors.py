from django.conf import settings


def billing(request) -> dict:
    """Lets every page know whether billing is switched on (a Stripe key is set)."""
    return {"billing_enabled": settings.BILLING_ENABLED}
