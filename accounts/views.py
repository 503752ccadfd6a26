"""The signed-in home page. Login, logout and password reset are Django's own; signup is
composed with licensing in billing_portal.views."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .selectors import current_membership


@login_required
def home(request):
    membership = current_membership(user=request.user)
    return render(
        request,
        "accounts/home.html",
        {"membership": membership, "customer": membership.customer if membership else None},
    )
