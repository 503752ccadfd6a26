"""Background jobs for billing. Tasks take ids and call the service that does the work."""

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
