"""Writes for accounts: signing up a customer and starting its trial, confirming email
addresses, and the throttled requests that send account emails."""

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.ledger import Source, entry_record

from . import tasks
from .models import Customer, Membership, User
from .throttling import rate_limit_hit

logger = logging.getLogger(__name__)

HOUR = 60 * 60
# Emails one address (or one client address) can make the portal send in an hour. Past the
# limit the pages answer as usual and send nothing, so a limit tells nobody whether an
# address is registered.
PASSWORD_RESETS_PER_EMAIL = 3
PASSWORD_RESETS_PER_CLIENT = 10
SIGNUP_ATTEMPT_EMAILS_PER_EMAIL = 3
# Signups one client address may make in an hour (each sends an email somewhere).
SIGNUPS_PER_CLIENT = 20
VERIFICATION_RESENDS_PER_USER = 3


class EmailAlreadyRegistered(Exception):
    """Another user has this email address, in some letter case."""


@transaction.atomic
def customer_signup(*, email: str, password: str, company_name: str = "") -> Membership:
    """Create the user, their customer account with a trial, and their owner membership,
    and email them the link that confirms their address. The trial starts now; billing
    waits for the confirmed address.

    No Stripe call: a trial needs no card and no Stripe customer.
    """
    if User.objects.email_taken(email):
        # Hash anyway, so a registered address does not answer faster than a new one.
        make_password(password)
        raise EmailAlreadyRegistered(email)
    try:
        # A savepoint, so that losing a race to the same address is an ordinary error.
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
    except IntegrityError as exc:
        raise EmailAlreadyRegistered(email) from exc

    customer = Customer.objects.create(
        name=company_name.strip(),
        trial_ends_at=timezone.now() + timedelta(days=settings.TRIAL_DAYS),
    )
    membership = Membership.objects.create(user=user, customer=customer, role=Membership.Role.OWNER)
    entry_record(
        customer_id=customer.customer_id,
        kind="account_opened",
        source=Source.CUSTOMER,
        actor=user,
        sentence=f"Account opened; the free trial runs until {customer.trial_ends_at:%-d %B %Y}.",
    )
    transaction.on_commit(partial(tasks.welcome_email_send.delay, user_id=user.pk))
    return membership


def signup_rate_limited(*, client_address: str) -> bool:
    """Count a signup from this client; True past SIGNUPS_PER_CLIENT this hour. New and
    registered emails count alike, so being refused tells nothing about the email."""
    return rate_limit_hit(
        scope="signup_client", key=client_address, limit=SIGNUPS_PER_CLIENT, window=HOUR
    )


def signup_attempt_report(*, email: str) -> None:
    """Someone tried to sign up with a registered address: tell its owner (a few times an
    hour at most, so the signup form cannot be used to flood them)."""
    user = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None:
        return
    if rate_limit_hit(
        scope="signup_attempt", key=user.email, limit=SIGNUP_ATTEMPT_EMAILS_PER_EMAIL, window=HOUR
    ):
        logger.warning("Signup attempts for user %s throttled: no email sent.", user.pk)
        return
    transaction.on_commit(partial(tasks.signup_attempt_email_send.delay, user_id=user.pk))


def email_verify(*, user: User, now: datetime | None = None) -> bool:
    """Mark the user's address confirmed. True the first time only: a link works once,
    even when two clicks race (the update is conditional)."""
    now = now or timezone.now()
    confirmed = User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(
        email_verified_at=now
    )
    if confirmed:
        user.email_verified_at = now
    return bool(confirmed)


def email_verification_resend(*, user: User) -> bool:
    """Email a fresh confirmation link; False when the address is confirmed already or
    the user asked too often this hour."""
    if user.is_email_verified:
        return False
    if rate_limit_hit(
        scope="verification_resend",
        key=str(user.pk),
        limit=VERIFICATION_RESENDS_PER_USER,
        window=HOUR,
    ):
        return False
    transaction.on_commit(partial(tasks.email_verification_send.delay, user_id=user.pk))
    return True


def password_reset_request(*, email: str, client_address: str) -> None:
    """Email a password reset link if an active user has this address, unless this address
    or this client asked too often this hour. Says nothing either way: the page after it
    is the same whatever happened."""
    # Both counters count every request, registered address or not.
    over_email = rate_limit_hit(
        scope="password_reset_email", key=email, limit=PASSWORD_RESETS_PER_EMAIL, window=HOUR
    )
    over_client = rate_limit_hit(
        scope="password_reset_client",
        key=client_address,
        limit=PASSWORD_RESETS_PER_CLIENT,
        window=HOUR,
    )
    if over_email or over_client:
        logger.warning("Password reset throttled (%s): no email sent.", client_address)
        return
    user = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None or not user.has_usable_password():
        return
    transaction.on_commit(partial(tasks.password_reset_email_send.delay, user_id=user.pk))
