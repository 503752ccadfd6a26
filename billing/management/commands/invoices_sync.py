"""`manage.py invoices_sync [--customer cust_…]`: send the current invoices' lines to Stripe
by diff now, as beat does every INVOICE_SYNC_INTERVAL_SECONDS. Safe to run any time."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Customer
from billing.invoice_sync import invoices_sync


class Command(BaseCommand):
    help = "Sync the open invoices (or one customer's) to Stripe, writing only what differs."

    def add_arguments(self, parser):
        parser.add_argument("--customer", help="Only this customer (cust_…).")

    def handle(self, *args, customer=None, **options):
        if not settings.BILLING_ENABLED:
            raise CommandError("Billing is not enabled: there is no Stripe to sync to.")
        if customer and not Customer.objects.filter(customer_id=customer).exists():
            raise CommandError(f"No customer {customer}.")
        results = invoices_sync(customer_id=customer)
        failed = [result for result in results if result.errors]
        for result in results:
            if result.errors:
                self.stdout.write(f"invoice {result.invoice_id}: failed ({result.errors[0]})")
            elif result.writes:
                self.stdout.write(
                    f"invoice {result.invoice_id}: {result.created} created, "
                    f"{result.updated} updated, {result.deleted} deleted"
                )
        self.stdout.write(
            f"{len(results)} invoices, {sum(r.writes for r in results)} Stripe writes, "
            f"{len(failed)} failed (retried by the next run)."
        )
        if failed:
            raise CommandError(f"{len(failed)} invoices could not be synced; run again later.")
