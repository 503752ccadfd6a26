"""`manage.py stripe_setup`: push the plan catalog to Stripe (or the emulator), load it into
our tables, register this portal's webhook endpoint for PORTAL_BASE_URL, and drop links to
Stripe customers and subscriptions the Stripe account does not have. Safe to run any number
of times. Without a Stripe key it only loads the catalog locally."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing import errors, setup
from billing.links import stripe_links_repair
from licensing.catalog import catalog_read
from licensing.licenses import licenses_refresh_all
from licensing.services import catalog_load


class Command(BaseCommand):
    help = "Push the plan catalog and register the webhook endpoint at Stripe (idempotent)."

    def handle(self, *args, **options):
        catalog = catalog_read()
        if not settings.BILLING_ENABLED:
            catalog_load(catalog=catalog)
            self.stdout.write("Billing is not enabled: catalog loaded locally, nothing sent.")
            self._refresh_licenses()
            return
        try:
            for line in setup.catalog_push(catalog=catalog):
                self.stdout.write(line)
            endpoint, outcome = setup.webhook_endpoint_ensure(base_url=settings.PORTAL_BASE_URL)
            repairs = stripe_links_repair()
        except errors.BillingError as error:
            raise CommandError(f"Stripe refused the setup: {error.user_message}") from error
        self.stdout.write(f"Webhook endpoint {endpoint.id} {outcome}: {endpoint.url}")
        for line in repairs:
            self.stdout.write(line)
        self._refresh_licenses()

    def _refresh_licenses(self) -> None:
        # Licenses state their plan's limits: a changed catalog reissues the affected ones.
        self.stdout.write(f"Licenses reissued: {licenses_refresh_all()}")
