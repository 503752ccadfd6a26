"""Running a customer's billing cycles at will, in test mode: move their Stripe test clock
on, wait until Stripe has done what falls due (renewals, invoices, charges), and process
the events that caused. Used by `manage.py stripe_clock_advance` and the support page."""

import time
from dataclasses import dataclass

from django.conf import settings

from accounts.models import Customer

from . import gateway
from .errors import BillingError
from .events import events_reconcile
from .models import BillingInfo

POLL_SECONDS = 0.25
# Passes of the reconcile: each processes what the one before caused (a renewal's
# invoice.created finalizes it, which makes invoice.finalized and the charge's events).
MAX_PASSES = 5


class TestClockError(BillingError):
    """Why the clock could not be moved, in words for the operator."""

    __test__ = False  # not a pytest test class, whatever its name


@dataclass(frozen=True)
class ClockAdvanced:
    clock_id: str
    frozen_time_before: int
    frozen_time: int
    processed: int


def customer_test_clock_advance(
    *, customer: Customer, days: float, timeout: float = 120.0
) -> ClockAdvanced:
    if settings.STRIPE_LIVE_MODE or not settings.BILLING_ENABLED:
        raise TestClockError("Test clocks exist only with a Stripe test mode key.")
    if days <= 0:
        raise TestClockError("The clock moves forward only: give more than 0 days.")
    info = BillingInfo.objects.for_customer(customer)
    if info is None:
        raise TestClockError(f"{customer.customer_id} has no Stripe customer yet.")
    clock_id = gateway.customer_test_clock(stripe_customer_id=info.stripe_id)
    if not clock_id:
        raise TestClockError(
            f"{info.stripe_id} is not on a test clock (STRIPE_TEST_CLOCKS was off when it "
            "was created)."
        )
    clock = gateway.test_clock_retrieve(test_clock_id=clock_id)
    before = clock["frozen_time"]
    target = int(before + days * 86_400)
    clock = gateway.test_clock_advance(test_clock_id=clock_id, frozen_time=target)
    deadline = time.monotonic() + timeout
    while clock["status"] == "advancing":
        if time.monotonic() > deadline:
            raise TestClockError(f"Test clock {clock_id} still advancing after {timeout}s.")
        time.sleep(POLL_SECONDS)
        clock = gateway.test_clock_retrieve(test_clock_id=clock_id)
    if clock["status"] != "ready":
        raise TestClockError(f"Test clock {clock_id} is {clock['status']}.")
    # The webhooks may still be on their way: process every event not processed yet
    # through the same path, until a pass finds nothing left to do. A pass can fail while
    # the webhook path is processing the same object (its sync claim is held): that is
    # retried until the deadline, not reported.
    processed, passes = 0, 0
    while passes < MAX_PASSES:
        run = events_reconcile()
        processed += run.repaired
        if run.error:
            if time.monotonic() > deadline:
                raise TestClockError(f"Processing the events failed: {run.error}")
            time.sleep(POLL_SECONDS)
            continue
        passes += 1
        if not run.repaired:
            break
    return ClockAdvanced(clock_id, before, clock["frozen_time"], processed)
