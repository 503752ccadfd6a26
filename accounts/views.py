"""Confirming an email address, the password reset request, an account's members and
invitations, and switching accounts. Login, logout and the rest of password reset are
Django's own; signup and the home page are composed with licensing in
billing_portal.views."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from . import members, services
from .decorators import email_verified_required
from .forms import InvitationForm, InvitationSignupForm, RoleForm
from .models import Membership, User
from .selectors import CURRENT_ACCOUNT_SESSION_KEY, current_membership
from .throttling import client_address
from .tokens import (
    InvitationUsed,
    VerificationLinkExpired,
    VerificationLinkInvalid,
    email_verification_user,
    invitation_from_token,
)


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


# --- Members and invitations ------------------------------------------------------------------


def _membership_or_404(request) -> Membership:
    membership = current_membership(request)
    if membership is None:
        raise Http404("No customer account")
    return membership


def _owner_or_403(request) -> Membership:
    membership = _membership_or_404(request)
    if membership.role != Membership.Role.OWNER:
        raise PermissionDenied("Only the account's owners manage its members.")
    return membership


@email_verified_required
def members_page(request):
    """Everyone may see who is in the account; owners invite, change roles and remove."""
    membership = _membership_or_404(request)
    form = InvitationForm(request.POST or None)
    if request.method == "POST":
        _owner_or_403(request)
        if form.is_valid():
            try:
                members.invitation_create(
                    customer=membership.customer,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    invited_by=request.user,
                )
            except members.AlreadyMember:
                form.add_error("email", "This address belongs to a member of the account already.")
            except members.TooManyInvitations:
                form.add_error(None, "Too many invitations this hour: please try again later.")
            else:
                messages.success(
                    request, f"We emailed an invitation to {form.cleaned_data['email']}."
                )
                return redirect("members")
    customer = membership.customer
    return render(
        request,
        "accounts/members.html",
        {
            "membership": membership,
            "customer": customer,
            "is_owner": membership.role == Membership.Role.OWNER,
            "members": customer.memberships.select_related("user").order_by("created_at"),
            "invitations": customer.invitations.filter(accepted_at__isnull=True),
            "roles": Membership.Role.choices,
            "form": form,
        },
        status=400 if form.errors else 200,
    )


def _member_of_current_account(request, membership_id: int) -> Membership:
    """A membership of the current account only: another account's is a 404."""
    current = _membership_or_404(request)
    return get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, customer=current.customer
    )


@require_POST
@login_required
def member_role_change(request, membership_id: int):
    _owner_or_403(request)
    target = _member_of_current_account(request, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect("members")
    try:
        members.membership_role_change(
            membership=target, role=form.cleaned_data["role"], actor=request.user
        )
    except members.LastOwner:
        messages.error(request, "The account needs an owner: make someone else owner first.")
    else:
        messages.success(request, f"{target.user.email} is now {form.cleaned_data['role']}.")
    return redirect("members")


@require_POST
@login_required
def member_remove(request, membership_id: int):
    """Owners remove anyone; any member may leave (remove themselves)."""
    target = _member_of_current_account(request, membership_id)
    leaving = target.user_id == request.user.pk
    if not leaving:
        _owner_or_403(request)
    try:
        members.membership_remove(membership=target, actor=request.user)
    except members.LastOwner:
        messages.error(request, "The account needs an owner: make someone else owner first.")
        return redirect("members")
    if leaving:
        request.session.pop(CURRENT_ACCOUNT_SESSION_KEY, None)
        messages.success(request, f"You left {target.customer.display_name}.")
        return redirect("home")
    messages.success(request, f"{target.user.email} was removed from the account.")
    return redirect("members")


def _invitation_failed(request, reason: str):
    return render(request, "accounts/invitation_failed.html", {"reason": reason}, status=400)


def _enter(request, membership: Membership):
    request.session[CURRENT_ACCOUNT_SESSION_KEY] = membership.customer_id
    messages.success(
        request,
        f"Welcome to {membership.customer.display_name}: you are "
        f"{membership.get_role_display().lower()} here.",
    )
    return redirect("home")


@never_cache
@sensitive_post_parameters("password")
def invitation_accept(request, token: str):
    """GET shows the invitation, POST accepts it (mail scanners do not use links up). A
    signed-in invitee joins with their login; a new address chooses a password; an
    address with a login signs in first. Bad links change nothing."""
    try:
        invitation = invitation_from_token(token=token)
    except VerificationLinkExpired:
        return _invitation_failed(request, "expired")
    except VerificationLinkInvalid:
        return _invitation_failed(request, "invalid")
    except InvitationUsed:
        return _invitation_failed(request, "used")
    context = {"invitation": invitation, "form": None}
    if request.user.is_authenticated:
        if request.user.email.lower() != invitation.email.lower():
            return render(request, "accounts/invitation_other_address.html", context, status=403)
        if request.method == "POST":
            try:
                return _enter(
                    request, members.invitation_accept(invitation=invitation, user=request.user)
                )
            except members.InvitationUnusable:
                return _invitation_failed(request, "used")
        return render(request, "accounts/invitation.html", context)
    if User.objects.filter(email__iexact=invitation.email).exists():
        context["login_url"] = f"{reverse('login')}?next={request.path}"
        return render(request, "accounts/invitation.html", context)
    form = InvitationSignupForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            membership = members.invitation_signup(
                invitation=invitation, password=form.cleaned_data["password"]
            )
        except members.InvitationUnusable:
            return _invitation_failed(request, "used")
        login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
        return _enter(request, membership)
    context["form"] = form
    return render(request, "accounts/invitation.html", context, status=400 if form.errors else 200)


@require_POST
@login_required
def account_switch(request):
    """Work in another account of the user's: the choice lives in the session. An account
    the user is not a member of is a 404, and nothing changes."""
    membership = (
        Membership.objects.select_related("customer")
        .filter(user=request.user, customer_id=request.POST.get("customer_id", ""))
        .first()
    )
    if membership is None:
        raise Http404("No such account")
    request.session[CURRENT_ACCOUNT_SESSION_KEY] = membership.customer_id
    messages.info(request, f"You are working in {membership.customer.display_name}.")
    return redirect("home")
