"""Writes for accounts: signing up a customer and starting its trial."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Customer, Membership, User


class EmailAlreadyRegistered(Exception):
    """Another user has this email address, in some letter case."""


@transaction.atomic
def customer_signup(*, email: str, password: str, company_name: str = "") -> Membership:
    """Create the user, their customer account with a trial, and their owner membership.

    No Stripe call: a trial needs no card and no Stripe customer.
    """
    if User.objects.email_taken(email):
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

    from .tasks import welcome_email_send

    transaction.on_commit(lambda: welcome_email_send.delay(user_id=user.pk))
    return membership


def welcome_email_send(*, user_id: int) -> None:
    from .emails import email_send

    user = User.objects.get(pk=user_id)
    customer = Customer.objects.for_user(user).first()
    email_send(
        to=user.email,
        template="welcome",
        context={"user": user, "customer": customer},
    )
