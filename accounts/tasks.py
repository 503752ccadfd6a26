"""Background jobs for accounts. Tasks take ids and call the service that does the work."""

import smtplib

from celery import shared_task


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError),
    retry_backoff=True,
    max_retries=5,
)
def welcome_email_send(*, user_id: int) -> None:
    from .services import welcome_email_send as send

    send(user_id=user_id)
