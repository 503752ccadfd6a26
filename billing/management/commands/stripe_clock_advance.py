"""`manage.py stripe_clock_advance cust_… --days N`: move a customer's Stripe test clock on
(test mode, STRIPE_TEST_CLOCKS), wait until Stripe has done what falls due (renewals,
invoices, charges), and process the events that caused before returning."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Customer
from billing import errors, gateway
from billing.events import events_reconcile
from billing.models import BillingInfo

POLL_SECONDS = 0.25
# Passes of the reconcile: each processes what the one before caused (a renewal's
# invoice.created finalizes it, which makes invoice.finalized and the charge's events).
MAX_PASSES = 5


class Command(BaseCommand):
    help = "Advance a customer's Stripe test clock by N days and process what that caused."

    def add_arguments(self, parser):
        parser.add_argument("customer", help="The customer (cust_…).")
        parser.add_argument("--days", type=float, required=True)
        parser.add_argument("--timeout", type=float, default=120.0, help="Seconds to wait.")

    def handle(self, *args, customer, days, timeout, **options):
        if settings.STRIPE_LIVE_MODE or not settings.BILLING_ENABLED:
            raise CommandError("Test clocks exist only with a Stripe test mode key.")
        if days <= 0:
            raise CommandError("--days must be more than 0.")
        account = Customer.objects.filter(customer_id=customer).first()
        if account is None:
            raise CommandError(f"No customer {customer}.")
        info = BillingInfo.objects.for_customer(account)
        if info is None:
            raise CommandError(f"{customer} has no Stripe customer yet.")
        try:
            clock_id = gateway.customer_test_clock(stripe_customer_id=info.stripe_id)
            if not clock_id:
                raise CommandError(
                    f"{info.stripe_id} is not on a test clock (STRIPE_TEST_CLOCKS was off when "
                    "it was created)."
                )
            clock = gateway.test_clock_retrieve(test_clock_id=clock_id)
            target = int(clock["frozen_time"] + days * 86_400)
            clock = gateway.test_clock_advance(test_clock_id=clock_id, frozen_time=target)
            deadline = time.monotonic() + timeout
            while clock["status"] == "advancing":
                if time.monotonic() > deadline:
                    raise CommandError(f"Test clock {clock_id} still advancing after {timeout}s.")
                time.sleep(POLL_SECONDS)
                clock = gateway.test_clock_retrieve(test_clock_id=clock_id)
        except errors.BillingError as error:
            raise CommandError(f"Stripe refused: {error.user_message}") from error
        if clock["status"] != "ready":
            raise CommandError(f"Test clock {clock_id} is {clock['status']}.")
        # The webhooks may still be on their way: process every event not processed yet
        # through the same path, until a pass finds nothing left to do.
        # A pass can fail while the webhook path is processing the same object (its sync
        # claim is held): that is retried until the deadline, not reported.
        processed, passes = 0, 0
        while passes < MAX_PASSES:
            run = events_reconcile()
            processed += run.repaired
            if run.error:
                if time.monotonic() > deadline:
                    raise CommandError(f"Processing the events failed: {run.error}")
                time.sleep(POLL_SECONDS)
                continue
            passes += 1
            if not run.repaired:
                break
        self.stdout.write(
            f"Test clock {clock_id} is at {clock['frozen_time']} (ready); "
            f"{processed} events processed."
        )
