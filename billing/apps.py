import logging

from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Everything that talks to Stripe: cards, billing details, subscriptions, invoices."""

    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from . import redaction, webhooks  # noqa: F401 - webhooks connects our receivers

        redaction.connect()
        from . import gateway

        gateway.stripe_configure()
        logging.getLogger("djstripe.models.base").addFilter(gateway.MirrorStopsUnlogged())
