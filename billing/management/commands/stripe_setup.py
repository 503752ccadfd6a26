"""`manage.py stripe_setup`: register this portal's webhook endpoint at Stripe (or the
emulator) for PORTAL_BASE_URL. Safe to run any number of times."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing import gateway, services


class Command(BaseCommand):
    help = "Register the portal's dj-stripe webhook endpoint at Stripe for PORTAL_BASE_URL."

    def handle(self, *args, **options):
        if not settings.BILLING_ENABLED:
            raise CommandError("Billing is not enabled: set STRIPE_SECRET_KEY first.")
        try:
            endpoint, outcome = services.webhook_endpoint_ensure(base_url=settings.PORTAL_BASE_URL)
        except gateway.BillingError as error:
            raise CommandError(f"Stripe refused the setup: {error.user_message}") from error
        self.stdout.write(f"Webhook endpoint {endpoint.id} {outcome}: {endpoint.url}")
