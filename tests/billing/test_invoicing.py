"""Current invoices: one per customer and cycle, their lines computed from the usage and
resource ledgers (another customer's use and use outside the cycle never count), changed
only when the ledger changes, with what a sync recorded left alone."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.invoicing import current_invoice, current_invoice_ensure, invoice_lines_refresh
from billing.models import Invoice, InvoiceLine
from licensing.catalog import catalog_read
from licensing.models import CustomerPlan, Plan
from licensing.resources import resource_record
from licensing.services import catalog_load, usage_record

APRIL = datetime(2026, 4, 1, tzinfo=UTC)
MAY = datetime(2026, 5, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 21, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def catalog(db):
    catalog_load(catalog=catalog_read())


def on_plan(customer, code, start=APRIL, end=MAY, status=CustomerPlan.Status.ACTIVE, **extra):
    CustomerPlan.objects.update_or_create(
        customer=customer,
        defaults={
            "plan": Plan.objects.get(code=code),
            "status": status,
            "current_period_start": start,
            "current_period_end": end,
            "subscription_id": "sub_test",
            **extra,
        },
    )


def use(customer, quantity, at, feature="api_calls"):
    usage_record(
        customer=customer, feature=feature, quantity=quantity,
        idempotency_key=f"{feature}-{quantity}-{at.isoformat()}", occurred_at=at,
    )  # fmt: skip


def attach(customer, resource_id, at, action="attach"):
    resource_record(
        customer=customer, feature="projects", resource_id=resource_id, action=action,
        idempotency_key=f"{action}-{resource_id}-{at.isoformat()}", occurred_at=at,
    )  # fmt: skip


def figures(invoice) -> dict[str, int]:
    return {line.key: line.amount for line in invoice.lines.all()}


@pytest.fixture
def customer(membership, other_membership, catalog):
    """On Pro for April, with another customer on Pro whose use must never count here."""
    on_plan(membership.customer, "pro")
    on_plan(other_membership.customer, "pro")
    use(other_membership.customer, 900_000, APRIL + timedelta(days=2))
    for n in range(30):
        attach(other_membership.customer, f"other_{n}", APRIL - timedelta(days=5))
    return membership.customer


def test_lines_come_from_the_usage_and_resource_ledgers(customer):
    use(customer, 5_000, APRIL - timedelta(seconds=1))  # the cycle before: not this invoice
    use(customer, 100_000, APRIL)
    use(customer, 45_000, NOW - timedelta(hours=1))
    for n in range(20):  # Pro includes 20 projects
        attach(customer, f"proj_{n}", APRIL - timedelta(days=40))
    attach(customer, "proj_extra", datetime(2026, 4, 11, tzinfo=UTC))  # held 20 of 30 days

    invoice = current_invoice_ensure(customer=customer)

    assert (invoice.period_start, invoice.period_end, invoice.currency) == (APRIL, MAY, "eur")
    # €49 plan; 45,000 calls beyond 100,000 make 5 blocks of €2; 20/30 of €3 for a project.
    assert figures(invoice) == {"plan": 4900, "usage:api_calls": 1000, "held:projects": 200}
    usage = invoice.lines.get(key="usage:api_calls")
    assert (usage.quantity, usage.unit_amount, usage.per) == (45_000, 200, 10_000)
    held = invoice.lines.get(key="held:projects")
    assert (held.quantity, held.held_days) == (20 * 86_400, 20)
    assert all((line.period_start, line.period_end) == (APRIL, MAY) for line in invoice.lines.all())
    assert all(line.stripe_invoice_item_id == "" for line in invoice.lines.all())
    assert all(line.synced_amount is None for line in invoice.lines.all())


def test_one_invoice_per_customer_and_cycle(customer):
    first = current_invoice_ensure(customer=customer)
    assert current_invoice_ensure(customer=customer) == first
    assert Invoice.objects.filter(customer=customer).count() == 1

    on_plan(customer, "pro", start=MAY, end=datetime(2026, 6, 1, tzinfo=UTC))
    with time_machine.travel(MAY + timedelta(hours=1), tick=False):
        second = current_invoice_ensure(customer=customer)
    assert second != first
    assert current_invoice(customer=customer) == second
    # The closed cycle's invoice stays open until Stripe finalizes it.
    assert Invoice.objects.get(pk=first.pk).is_open


def test_a_refresh_writes_only_what_changed_and_keeps_what_the_sync_recorded(customer):
    use(customer, 110_000, APRIL + timedelta(days=1))
    invoice = current_invoice_ensure(customer=customer)
    InvoiceLine.objects.filter(invoice=invoice, key="usage:api_calls").update(
        stripe_invoice_item_id="ii_123", synced_quantity=10_000, synced_amount=200
    )

    with CaptureQueriesContext(connection) as unchanged:
        invoice_lines_refresh(invoice=invoice)
    writes = [q["sql"] for q in unchanged.captured_queries if "billing_invoiceline" in q["sql"]]
    assert not [sql for sql in writes if sql.startswith(("UPDATE", "INSERT"))]

    use(customer, 20_000, NOW)
    invoice_lines_refresh(invoice=invoice)
    line = invoice.lines.get(key="usage:api_calls")
    assert (line.quantity, line.amount) == (30_000, 600)
    assert (line.stripe_invoice_item_id, line.synced_quantity, line.synced_amount) == (
        "ii_123",
        10_000,
        200,
    )


def test_a_line_the_plan_no_longer_prices_drops_to_zero_and_keeps_its_stripe_item(customer):
    for n in range(21):
        attach(customer, f"proj_{n}", APRIL)
    invoice = current_invoice_ensure(customer=customer)
    assert figures(invoice)["held:projects"] == 300
    InvoiceLine.objects.filter(invoice=invoice, key="held:projects").update(
        stripe_invoice_item_id="ii_9"
    )
    on_plan(customer, "business")  # unlimited projects, not priced
    invoice = current_invoice_ensure(customer=customer)
    line = invoice.lines.get(key="held:projects")
    assert (line.amount, line.quantity, line.stripe_invoice_item_id) == (0, 0, "ii_9")
    assert figures(invoice)["plan"] == 19900
    assert invoice.plan.code == "business"


def test_a_finalized_invoice_never_changes(customer):
    use(customer, 110_000, APRIL)
    invoice = current_invoice_ensure(customer=customer)
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.FINALIZED)
    invoice.refresh_from_db()
    use(customer, 500_000, NOW)
    invoice_lines_refresh(invoice=invoice)
    assert figures(invoice)["usage:api_calls"] == 200


@pytest.mark.parametrize(
    "status", [None, CustomerPlan.Status.CANCELED], ids=["free trial", "canceled"]
)
def test_without_a_paid_plan_nothing_is_billed(membership, other_membership, catalog, status):
    customer = membership.customer
    if status:
        on_plan(customer, "pro", status=status)
    use(customer, 500, NOW)
    attach(customer, "proj_1", NOW)
    assert current_invoice_ensure(customer=customer) is None
    assert not Invoice.objects.exists()
