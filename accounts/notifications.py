"""The emails accounts sends, rendered from templates/email/ and sent through `email_send`.

Each takes ids, as the tasks that call it do; nothing here imports services or tasks, so
services → tasks → notifications runs one way.
"""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .emails import email_send
from .models import Customer, Invitation, User
from .tokens import INVITATION_MAX_AGE, MAX_AGE, email_verification_token, invitation_token


def _verification_url(user: User) -> str:
    token = email_verification_token(user=user)
    return settings.PORTAL_BASE_URL + reverse("email_verify", kwargs={"token": token})


def welcome_email_send(*, user_id: int) -> None:
    """To a new signup: the account, its trial, and the link confirming the address."""
    user = User.objects.get(pk=user_id)
    email_send(
        to=user.email,
        template="welcome",
        context={
            "user": user,
            "customer": Customer.objects.for_user(user).first(),
            "verify_url": _verification_url(user),
            "link_days": MAX_AGE.days,
        },
    )


def email_verification_send(*, user_id: int) -> None:
    """A fresh confirmation link, asked for from the portal."""
    user = User.objects.get(pk=user_id)
    if user.is_email_verified:
        return
    email_send(
        to=user.email,
        template="email_verification",
        context={"user": user, "verify_url": _verification_url(user), "link_days": MAX_AGE.days},
    )


def signup_attempt_email_send(*, user_id: int) -> None:
    """To the owner of an address someone tried to sign up with again: the signup page
    answers the same either way, so this email is how the owner learns of it."""
    user = User.objects.get(pk=user_id)
    email_send(
        to=user.email,
        template="signup_attempt",
        context={
            "user": user,
            "login_url": settings.PORTAL_BASE_URL + reverse("login"),
            "reset_url": settings.PORTAL_BASE_URL + reverse("password_reset"),
        },
    )


def password_reset_email_send(*, user_id: int) -> None:
    """The password reset link. The token is Django's: it stops working once the password
    changes or the user signs in, and after PASSWORD_RESET_TIMEOUT."""
    user = User.objects.get(pk=user_id)
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    email_send(
        to=user.email,
        template="password_reset",
        context={"user": user, "reset_url": settings.PORTAL_BASE_URL + path},
    )


def invitation_email_send(*, invitation_id: int) -> None:
    """The invitation to join an account, with its signed, single-use link."""
    invitation = Invitation.objects.select_related("customer", "invited_by").get(pk=invitation_id)
    if invitation.is_accepted:
        return
    path = reverse("invitation_accept", kwargs={"token": invitation_token(invitation=invitation)})
    email_send(
        to=invitation.email,
        template="invitation",
        context={
            "invitation": invitation,
            "accept_url": settings.PORTAL_BASE_URL + path,
            "link_days": INVITATION_MAX_AGE.days,
        },
    )
