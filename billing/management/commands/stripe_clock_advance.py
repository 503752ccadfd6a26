"""`manage.py stripe_clock_advance cust_… --days N`: move a customer's Stripe test clock on
(test mode, STRIPE_TEST_CLOCKS), wait until Stripe has done what falls due (renewals,
invoices, charges), and process the events that caused before returning."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Customer
from billing import errors
from billing.test_clocks import TestClockError, customer_test_clock_advance


class Command(BaseCommand):
    help = "Advance a customer's Stripe test clock by N days and process what that caused."

    def add_arguments(self, parser):
        parser.add_argument("customer", help="The customer (cust_…).")
        parser.add_argument("--days", type=float, required=True)
        parser.add_argument("--timeout", type=float, default=120.0, help="Seconds to wait.")

    def handle(self, *args, customer, days, timeout, **options):
        if days <= 0:
            raise CommandError("--days must be more than 0.")
        account = Customer.objects.filter(customer_id=customer).first()
        if account is None:
            raise CommandError(f"No customer {customer}.")
        try:
            advanced = customer_test_clock_advance(customer=account, days=days, timeout=timeout)
        except TestClockError as error:
            raise CommandError(error.user_message) from error
        except errors.BillingError as error:
            raise CommandError(f"Stripe refused: {error.user_message}") from error
        self.stdout.write(
            f"Test clock {advanced.clock_id} is at {advanced.frozen_time} (ready); "
            f"{advanced.processed} events processed."
        )
