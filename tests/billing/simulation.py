"""Renewals through the Stripe emulator, for `make simulate` and (small) for the suite:
customers on test clocks of their own, random usage with duplicates and retried posts,
projects attached and detached mid-cycle, periodic syncs between them, and each cycle's
renewal settled by the portal. The figure that matters: the largest difference between a
finalized Stripe invoice and our ledger's lines, in minor units (it should be 0)."""

import random
from dataclasses import dataclass, field
from datetime import timedelta

from billing.cards import billing_info_ensure
from billing.invoice_sync import invoice_sync_to_stripe
from billing.models import Invoice
from licensing.models import CustomerPlan
from licensing.resources import resource_record
from licensing.services import usage_record
from tests.accounts.factories import CustomerFactory

HOUR = 3600


@dataclass
class Report:
    renewals: int = 0
    held: int = 0
    largest_difference: int = 0
    usage_billed: int = 0  # beyond the plan's price, over every finalized renewal
    differences: list[tuple[str, int, int]] = field(default_factory=list)


def _customer_on_pro(stripe_emulator, stripe_client, prices: dict, n: int, start: int):
    customer = CustomerFactory(name=f"Sim {n}")
    clock = stripe_client.v1.test_helpers.test_clocks.create({"frozen_time": start})
    stripe_client.v1.customers.create(
        {"email": f"sim{n}@example.com", "test_clock": clock.id,
         "metadata": {"customer_id": customer.customer_id}}
    )  # fmt: skip
    stripe_id = billing_info_ensure(customer=customer, email=f"sim{n}@example.com").stripe_id
    card = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_id})
    stripe_client.v1.customers.update(
        stripe_id, {"invoice_settings": {"default_payment_method": card.id}}
    )
    stripe_client.v1.subscriptions.create(
        {"customer": stripe_id, "items": [{"price": prices["pro_monthly"]}],
         "metadata": {"customer_id": customer.customer_id, "plan_code": "pro"}}
    )  # fmt: skip
    stripe_emulator.deliver()
    return customer, clock


def _cycle_activity(rng: random.Random, customer, invoice: Invoice, held: set[str]) -> None:
    """Usage and projects at random moments of the cycle, in time order, with a sync now
    and then; some posts repeated with their key, as a client retrying would."""
    span = (invoice.period_end - invoice.period_start).total_seconds()
    moments = sorted(rng.uniform(60, span - 2 * HOUR) for _ in range(rng.randint(3, 12)))
    for index, offset in enumerate(moments):
        at = invoice.period_start + timedelta(seconds=offset)
        if rng.random() < 0.6:
            key = f"{invoice.pk}-use-{index}"
            quantity = rng.choice([1, 999, 10_000, 25_000, 40_001])
            for _ in range(rng.choice([1, 1, 2])):  # sometimes the same post twice
                usage_record(
                    customer=customer, feature="api_calls", quantity=quantity,
                    idempotency_key=key, occurred_at=at, now=at,
                )  # fmt: skip
        else:
            detach = held and rng.random() < 0.4
            resource_id = rng.choice(sorted(held)) if detach else f"p{invoice.pk}-{index}"
            action = "detach" if detach else "attach"
            for _ in range(rng.choice([1, 2])):
                resource_record(
                    customer=customer, feature="projects", resource_id=resource_id,
                    action=action, idempotency_key=f"{invoice.pk}-{action}-{resource_id}",
                    occurred_at=at, now=at,
                )  # fmt: skip
            (held.discard if detach else held.add)(resource_id)
        if rng.random() < 0.3:
            invoice_sync_to_stripe(invoice_id=invoice.pk)


def simulate(
    stripe_emulator, stripe_client, *, customers: int, cycles: int, seed: int, start: int
) -> Report:
    rng = random.Random(seed)
    prices = {p.lookup_key: p.id for p in stripe_client.v1.prices.list({"limit": 100}).data}
    # Enough projects from the start that some cycles bill beyond the 20 included.
    people = []
    for n in range(customers):
        customer, clock = _customer_on_pro(stripe_emulator, stripe_client, prices, n, start)
        people.append((customer, clock, set()))
    report = Report()
    for _cycle in range(cycles):
        for customer, clock, held in people:
            invoice = Invoice.objects.get(customer=customer, status=Invoice.Status.OPEN)
            if not held:
                for k in range(rng.randint(15, 25)):
                    at = invoice.period_start + timedelta(seconds=30)
                    resource_record(
                        customer=customer, feature="projects", resource_id=f"base-{k}",
                        action="attach", idempotency_key=f"base-{customer.pk}-{k}",
                        occurred_at=at, now=at,
                    )  # fmt: skip
                    held.add(f"base-{k}")
            _cycle_activity(rng, customer, invoice, held)
            period_end = int(
                CustomerPlan.objects.get(customer=customer).current_period_end.timestamp()
            )
            stripe_emulator.advance_clock(clock.id, period_end + HOUR)
            invoice.refresh_from_db()
            report.renewals += 1
            ours = sum(line.amount for line in invoice.lines.all())
            if invoice.status != Invoice.Status.FINALIZED:
                report.held += 1
                report.differences.append((customer.customer_id, ours, -1))
                continue
            stripe_total = stripe_client.v1.invoices.retrieve(invoice.stripe_invoice_id).total
            difference = abs(stripe_total - ours)
            if difference:
                report.differences.append((customer.customer_id, ours, stripe_total))
            report.largest_difference = max(report.largest_difference, difference)
            report.usage_billed += ours - invoice.plan.amount
    return report
