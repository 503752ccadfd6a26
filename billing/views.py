"""Billing pages. With no STRIPE_SECRET_KEY, billing is disabled: the overview says so and
every billing action answers 501 Not Implemented, while the rest of the portal works."""

from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.selectors import current_membership


def billing_disabled_response(request):
    return render(request, "billing/disabled.html", status=501)


def billing_required(view):
    """Answer 501 with an explanation when billing is not enabled on this portal."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.BILLING_ENABLED:
            return billing_disabled_response(request)
        return view(request, *args, **kwargs)

    return wrapper


@login_required
def overview(request):
    membership = current_membership(user=request.user)
    return render(
        request,
        "billing/overview.html",
        {"customer": membership.customer if membership else None},
    )
