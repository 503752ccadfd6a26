"""Signup and the signed-in home page. Login, logout and password reset are Django's own."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters

from .forms import EMAIL_TAKEN_MESSAGE, SignupForm
from .selectors import current_membership
from .services import EmailAlreadyRegistered, customer_signup


@sensitive_post_parameters("password")
def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = customer_signup(
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


@login_required
def home(request):
    membership = current_membership(user=request.user)
    return render(
        request,
        "accounts/home.html",
        {"membership": membership, "customer": membership.customer if membership else None},
    )
