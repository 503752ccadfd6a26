"""Background jobs for licensing. Tasks take ids and call the service or the notification
that does the work."""

import smtplib

from celery import shared_task

from billing_portal.scheduling import once_per_interval

from . import notifications


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError), retry_backoff=True, max_retries=5
)
def plan_email_send(
    *,
    customer_id: str,
    template: str,
    plan_code: str,
    previous_plan_code: str = "",
    previous_status: str = "",
    details: dict | None = None,
) -> None:
    notifications.plan_email_send(
        customer_id=customer_id,
        template=template,
        plan_code=plan_code,
        previous_plan_code=previous_plan_code,
        previous_status=previous_status,
        details=details,
    )


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError), retry_backoff=True, max_retries=5
)
def trial_ending_email_send(*, customer_id: str) -> None:
    notifications.trial_ending_email_send(customer_id=customer_id)


@shared_task
@once_per_interval("licensing.tasks.trial_ending_reminders_send")
def trial_ending_reminders_send() -> int:
    """Run by beat every hour (CELERY_BEAT_SCHEDULE)."""
    from .services import trial_ending_reminders_send as send

    return send()


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError), retry_backoff=True, max_retries=5
)
def license_email_send(*, jti: str) -> None:
    notifications.license_email_send(jti=jti)


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError), retry_backoff=True, max_retries=5
)
def spend_cap_email_send(*, crossing_id: int) -> None:
    notifications.spend_cap_email_send(crossing_id=crossing_id)
