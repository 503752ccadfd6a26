"""The renewal simulation (tests/billing/simulation.py), small in the suite; `make simulate`
runs it with SIMULATE_CUSTOMERS x SIMULATE_CYCLES renewals and prints the figures."""

import os
import time

import pytest

from billing.setup import catalog_push
from licensing.catalog import catalog_read
from tests.billing.simulation import simulate

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
