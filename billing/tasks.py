"""Background jobs for billing. Tasks take ids and call the service that does the work."""

import smtplib

from celery import shared_task

from billing_portal.scheduling import once_per_interval

from .errors import GatewayUnavailable


@shared_task(
    autoretry_for=(GatewayUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=10,
)
def stripe_event_process(*, event_id: str) -> bool:
    from .events import stripe_event_process as process

    return process(event_id=event_id)


@shared_task
@once_per_interval("billing.tasks.events_reconcile")
def events_reconcile() -> int:
    """Run by beat (CELERY_BEAT_SCHEDULE): recover events whose webhook never came."""
    from .events import events_reconcile as reconcile

    return reconcile().repaired


@shared_task
@once_per_interval("billing.tasks.invoices_sync")
def invoices_sync() -> int:
    """Run by beat (CELERY_BEAT_SCHEDULE): the current invoices to Stripe, by diff. An
    invoice that fails is left for the next run, with the same keys."""
    from .invoice_sync import invoices_sync as sync

    return sum(result.writes for result in sync())


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError), retry_backoff=True, max_retries=5
)
def recovery_email_send(*, recovery_id: int, template: str, round: int) -> None:
    from .notifications import recovery_email_send as send

    send(recovery_id=recovery_id, template=template, round=round)


@shared_task(
    autoretry_for=(GatewayUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=10,
)
def card_try_on_open_invoices(*, payment_method_id: str) -> int:
    """A card just added pays its customer's unpaid invoice, if there is one."""
    from .recovery import card_try_on_open_invoices as try_card

    return len(try_card(payment_method_id=payment_method_id))
