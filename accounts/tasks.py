"""Background jobs for accounts: each takes ids and sends one email through notifications."""

import smtplib

from celery import shared_task

from . import notifications

# Mail servers fail for a moment: retry those, and nothing else.
EMAIL_RETRY = {
    "autoretry_for": (smtplib.SMTPException, ConnectionError),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(**EMAIL_RETRY)
def welcome_email_send(*, user_id: int) -> None:
    notifications.welcome_email_send(user_id=user_id)


@shared_task(**EMAIL_RETRY)
def email_verification_send(*, user_id: int) -> None:
    notifications.email_verification_send(user_id=user_id)


@shared_task(**EMAIL_RETRY)
def signup_attempt_email_send(*, user_id: int) -> None:
    notifications.signup_attempt_email_send(user_id=user_id)


@shared_task(**EMAIL_RETRY)
def password_reset_email_send(*, user_id: int) -> None:
    notifications.password_reset_email_send(user_id=user_id)


@shared_task(**EMAIL_RETRY)
def invitation_email_send(*, invitation_id: int) -> None:
    notifications.invitation_email_send(invitation_id=invitation_id)
