"""The renewal simulation (tests/billing/simulation.py), small in the suite; `make simulate`
runs it with SIMULATE_CUSTOMERS x SIMULATE_CYCLES renewals and prints the figures."""

import os
import time

import pytest

from billing.setup import catalog_push
from licensing.catalog import catalog_read
from tests.billing.simulation import simulate, simulate_recovery

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_finalized_renewal_matches_our_ledger_to_the_cent(stripe_emulator, stripe_client):
    catalog_push(catalog=catalog_read())
    customers = int(os.environ.get("SIMULATE_CUSTOMERS", 2))
    cycles = int(os.environ.get("SIMULATE_CYCLES", 2))
    seed = int(os.environ.get("SIMULATE_SEED", 11))
    started = time.monotonic()
    report = simulate(
        stripe_emulator, stripe_client, customers=customers, cycles=cycles, seed=seed,
        start=int(time.time()),
    )  # fmt: skip
    print(
        f"\nsimulate: {report.renewals} renewals ({customers} customers x {cycles} cycles, "
        f"seed {seed}) in {time.monotonic() - started:.1f}s; held: {report.held}; "
        f"largest difference between a finalized Stripe invoice and our ledger: "
        f"{report.largest_difference} minor units; usage and projects billed: "
        f"{report.usage_billed} minor units"
    )
    assert report.renewals == customers * cycles
    assert report.usage_billed > 0, "the simulation bills more than the plans' prices"
    assert (report.held, report.largest_difference, report.differences) == (0, 0, [])


def test_failed_renewals_are_paid_once_by_the_first_working_card_in_the_order(
    stripe_emulator, stripe_client
):
    catalog_push(catalog=catalog_read())
    renewals = int(os.environ.get("SIMULATE_RECOVERY", 10))
    seed = int(os.environ.get("SIMULATE_SEED", 11))
    started = time.monotonic()
    report = simulate_recovery(
        stripe_emulator, stripe_client, renewals=renewals, seed=seed, start=int(time.time())
    )
    print(
        f"\nsimulate --recovery: {report.renewals} renewals (seed {seed}) in "
        f"{time.monotonic() - started:.1f}s; paid by the primary: {report.paid_by_primary}; "
        f"paid by a later card: {report.recovered}; unpaid: {report.unpaid}; "
        f"our payment attempts: {report.attempts}; answers lost after the attempt was made: "
        f"{report.answers_lost}; "
        f"paid twice: {report.paid_twice}; paid by another card than the first working one: "
        f"{len(report.wrong_card)}; timeline gaps: {len(report.timeline_gaps)}"
    )
    assert report.renewals == renewals
    assert report.recovered > 0 and report.unpaid > 0, "the mix exercises both outcomes"
    assert report.answers_lost > 0, "some answers to payment attempts were lost"
    assert (report.paid_twice, report.wrong_card, report.timeline_gaps) == (0, [], [])
