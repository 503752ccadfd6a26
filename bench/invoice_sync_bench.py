"""The invoice sync's figures: a sync of every open invoice when nothing changed (time,
Stripe calls: 0), then with 1 % of the customers' usage changed (Stripe writes: one per
changed line, plus the drift check's one list per invoice written), through the
in-process emulator and at the configured request rate. Builds a throwaway database.

    python bench/invoice_sync_bench.py [--customers 10000] [--billed 1000] [--changed 100]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.portal_bench import setup_django


def seed(customers: int, billed: int):
    """`customers` on Pro with a current invoice; the first `billed` are real customers and
    subscriptions at the emulator with usage beyond the included, synced once. The others'
    lines bill nothing beyond the plan, so they never need Stripe."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from accounts.models import Customer, new_customer_id
    from billing import gateway
    from billing.invoice_sync import invoices_sync
    from billing.invoicing import current_invoice_ensure
    from billing.models import BillingInfo, CustomerBilling
    from billing.setup import catalog_push
    from licensing.catalog import catalog_read
    from licensing.models import CustomerPlan, Plan
    from licensing.services import usage_record

    catalog_push(catalog=catalog_read())
    api = gateway.client().v1
    price = api.prices.list({"lookup_keys": ["pro_monthly"]}).data[0].id
    now = timezone.now()
    accounts = Customer.objects.bulk_create(
        Customer(customer_id=new_customer_id(), trial_ends_at=now - timedelta(days=1))
        for _ in range(customers)
    )
    pro = Plan.objects.get(code="pro")
    plans, links = [], []
    for n, account in enumerate(accounts):
        if n < billed:
            stripe_id = api.customers.create({"metadata": {"customer_id": account.pk}}).id
            subscription_id = api.subscriptions.create(
                {"customer": stripe_id, "items": [{"price": price}],
                 "collection_method": "send_invoice", "days_until_due": 30}
            ).id  # fmt: skip
        else:
            stripe_id, subscription_id = f"cus_bench{n}", f"sub_bench{n}"
        info = BillingInfo.objects.create(stripe_id=stripe_id)
        links.append(CustomerBilling(customer=account, billing_info=info))
        plans.append(
            CustomerPlan(
                customer=account,
                plan=pro,
                status="active",
                subscription_id=subscription_id,
                current_period_start=now - timedelta(days=1),
                current_period_end=now + timedelta(days=29),
            )
        )
    CustomerBilling.objects.bulk_create(links)
    CustomerPlan.objects.bulk_create(plans)
    for n, account in enumerate(accounts):
        if n < billed:
            usage_record(customer=account, feature="api_calls", quantity=150_000,
                         idempotency_key=f"seed-{account.pk}")  # fmt: skip
        current_invoice_ensure(customer=account)
    settings.STRIPE_REQUESTS_PER_SECOND = 100_000  # the seeding sync is not measured
    invoices_sync()
    return accounts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--billed", type=int, default=1_000)
    parser.add_argument("--changed", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        setup_django(data_dir)
        from django.conf import settings

        from billing import gateway
        from billing.invoice_sync import invoices_sync
        from licensing.services import usage_record
        from stripe_emulator import InProcessHTTPClient, emulator_in_process

        class Counting(InProcessHTTPClient):
            requests = 0

            def request(self, *args, **kwargs):
                Counting.requests += 1
                return super().request(*args, **kwargs)

        settings.STRIPE_SECRET_KEY = "sk_test_" + "bench0invoices0key0000000000"
        gateway.stripe_configure(transport=Counting(emulator_in_process(), deliver_webhooks=False))
        rate = settings.STRIPE_REQUESTS_PER_SECOND
        accounts = seed(args.customers, args.billed)
        settings.STRIPE_REQUESTS_PER_SECOND = rate

        before, started = Counting.requests, time.perf_counter()
        results = invoices_sync()
        elapsed = time.perf_counter() - started
        print(f"invoice sync, nothing changed: {len(results)} invoices in {elapsed:.1f}s "
              f"({1000 * elapsed / len(results):.2f} ms each), Stripe calls: "
              f"{Counting.requests - before}")  # fmt: skip

        for account in accounts[: args.changed]:
            usage_record(customer=account, feature="api_calls", quantity=20_000,
                         idempotency_key=f"more-{account.pk}")  # fmt: skip
        before, started = Counting.requests, time.perf_counter()
        results = invoices_sync()
        elapsed = time.perf_counter() - started
        writes = sum(result.writes for result in results)
        print(f"invoice sync, {args.changed} of {len(results)} changed: {elapsed:.1f}s, "
              f"changed lines: {args.changed}, Stripe writes: {writes}, Stripe calls: "
              f"{Counting.requests - before} (the rest: one drift-check list per invoice "
              f"written), at most {rate:g} requests/s")  # fmt: skip


if __name__ == "__main__":
    main()
