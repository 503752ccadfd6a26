"""Confirming an email address, and the password reset request. Login, logout and the
rest of password reset are Django's own; signup and the home page are composed with
licensing in billing_portal.views."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import services
from .throttling import client_address
from .tokens import VerificationLinkExpired, VerificationLinkInvalid, email_verification_user


def signup_done(request):
    """The same page whether the address was new or registered."""
    return render(request, "accounts/signup_done.html")


@never_cache
def email_verify(request, token: str):
    """GET shows a button, POST confirms: mail scanners that open links do not use them up.
    Confirming signs the user in (the link proves they read the address's mail)."""
    try:
        user = email_verification_user(token=token)
    except VerificationLinkExpired:
        return render(request, "accounts/email_verify_failed.html", {"expired": True}, status=400)
    except VerificationLinkInvalid:
        return render(request, "accounts/email_verify_failed.html", {"expired": False}, status=400)
    if user.is_email_verified:
        return render(request, "accounts/email_verify_used.html", status=400)
    if request.method != "POST":
        return render(request, "accounts/email_verify.html", {"email": user.email})

    if not services.email_verify(user=user):
        return render(request, "accounts/email_verify_used.html", status=400)
    if not request.user.is_authenticated:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    messages.success(request, f"Thank you: {user.email} is confirmed.")
    return redirect("home")


@require_POST
@login_required
def email_verification_resend(request):
    if request.user.is_email_verified:
        messages.info(request, "Your email address is confirmed already.")
    elif services.email_verification_resend(user=request.user):
        messages.success(request, f"We sent a new link to {request.user.email}.")
    else:
        messages.error(request, "We sent several links already; please wait an hour.")
    return redirect("home")


@never_cache
def password_reset(request):
    """Django's form, throttled by services.password_reset_request. The next page is the
    same whether an email went out, the address is unknown, or the request was throttled."""
    form = PasswordResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.password_reset_request(
            email=form.cleaned_data["email"], client_address=client_address(request)
        )
        return redirect("password_reset_done")
    return render(request, "registration/password_reset_form.html", {"form": form})


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's; setting a password from the emailed link also confirms the address."""

    def form_valid(self, form):
        response = super().form_valid(form)
        services.email_verify(user=form.user)
        return response
