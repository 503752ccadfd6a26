"""Views that span apps: signup makes the account (accounts) and its trial license
(licensing), which accounts cannot do itself as it depends on nothing of ours."""

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters

from accounts.forms import EMAIL_TAKEN_MESSAGE, SignupForm
from accounts.services import EmailAlreadyRegistered
from licensing.services import customer_start


@sensitive_post_parameters("password")
def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = customer_start(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                company_name=form.cleaned_data["company_name"],
            )
        except EmailAlreadyRegistered:
            form.add_error("email", EMAIL_TAKEN_MESSAGE)
        else:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                f"Welcome! Your free trial runs for {membership.customer.trial_days_left()} days.",
            )
            return redirect("home")
    return render(request, "accounts/signup.html", {"form": form})
