"""Views that span apps: signup makes the account (accounts) and its trial license
(licensing), which accounts cannot do itself as it depends on nothing of ours."""

from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters

from accounts.forms import SignupForm
from accounts.services import (
    EmailAlreadyRegistered,
    signup_attempt_report,
    signup_rate_limited,
)
from accounts.throttling import client_address
from licensing.services import customer_start


@sensitive_post_parameters("password")
def signup(request):
    """A new address gets an account with its trial and a confirmation link; a registered
    one gets nothing but an email to its owner. Both see the same "check your inbox" page,
    and neither is signed in here (that would tell them apart): the link signs the new
    user in, and their password works meanwhile."""
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if signup_rate_limited(client_address=client_address(request)):
            return render(request, "accounts/signup_throttled.html", status=429)
        try:
            customer_start(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                company_name=form.cleaned_data["company_name"],
            )
        except EmailAlreadyRegistered:
            signup_attempt_report(email=form.cleaned_data["email"])
        return redirect("signup_done")
    return render(request, "accounts/signup.html", {"form": form})
