"""Delivering outgoing webhooks: one attempt per run, the next one queued with its backoff."""

from celery import shared_task

from billing_portal.scheduling import once_per_interval


@shared_task
def outgoing_webhook_deliver(*, delivery_id: int) -> None:
    from .services import outgoing_delivery_attempt

    delay = outgoing_delivery_attempt(delivery_id=delivery_id)
    if delay is not None:
        outgoing_webhook_deliver.apply_async(kwargs={"delivery_id": delivery_id}, countdown=delay)


@shared_task
@once_per_interval("outgoing.tasks.outgoing_deliveries_resume")
def outgoing_deliveries_resume() -> int:
    """Run by beat (CELERY_BEAT_SCHEDULE): retries that were lost are sent."""
    from .services import outgoing_deliveries_resume as resume

    return resume()
