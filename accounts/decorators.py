"""A view decorator for actions that wait for a confirmed email address."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def email_verified_required(view):
    """Refuse writes (any POST) from a user whose email address is not confirmed yet, with
    a page that offers a new confirmation link. Reading pages stays open: the trial is
    usable before the address is confirmed, spending money is not."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in SAFE_METHODS and not request.user.is_email_verified:
            return render(request, "accounts/email_unverified.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper
