"""Through the Stripe emulator: the current invoice is synced to Stripe by diff (no
request when nothing changed, at most one per changed line), checked against Stripe's
pending items, and at the renewal held, synced onto the draft and finalized only when the
draft's total is our ledger's to the cent."""

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import Entry
from billing import gateway
from billing.errors import GatewayUnavailable
from billing.events import events_reconcile
from billing.invoice_sync import (
    LINE_METADATA,
    invoice_drift_check,
    invoice_renewal_settle,
    invoice_sync_to_stripe,
)
from billing.models import BillingInfo, Invoice, StripeObjectSync
from licensing.models import CustomerPlan
from licensing.resources import resource_record
from licensing.services import usage_record
from tests.billing.test_plans import DAY, catalog, clock, end_trial, upgrade  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # as the plan tests: on-commit work


def use(customer, quantity: int, key: str) -> None:
    usage_record(customer=customer, feature="api_calls", quantity=quantity, idempotency_key=key)


def writes(stripe_emulator, since: int) -> Counter:
    return Counter(
        method for method, path in stripe_emulator.http.requests[since:]
        if path.startswith("/v1/invoiceitems") and method in ("POST", "DELETE")
    )  # fmt: skip


def pending_items(stripe_client, invoice) -> list:
    stripe_customer = BillingInfo.objects.for_customer(invoice.customer).stripe_id
    return stripe_client.v1.invoice_items.list({"customer": stripe_customer, "pending": True}).data


@pytest.fixture
def on_pro(signed_in_client, membership, other_membership, stripe_emulator, clock):  # noqa: F811
    customer = membership.customer
    end_trial(customer)
    upgrade(signed_in_client, stripe_emulator, "pro")
    stripe_emulator.deliver()
    return Invoice.objects.get(customer=customer)


def test_a_sync_sends_only_what_changed(on_pro, membership, stripe_emulator, stripe_client):
    customer = membership.customer
    requests = stripe_emulator.http.requests
    before = len(requests)
    assert invoice_sync_to_stripe(invoice_id=on_pro.pk).writes == 0
    assert len(requests) == before, "nothing billable beyond the plan: no Stripe call"

    use(customer, 150_000, "a")  # 50,000 beyond the included: 5 blocks of €2.00
    before = len(requests)
    result = invoice_sync_to_stripe(invoice_id=on_pro.pk)
    assert (result.created, result.updated, result.deleted) == (1, 0, 0)
    assert writes(stripe_emulator, before) == {"POST": 1}
    assert len(requests) - before <= 2  # the write, and the drift check's one list
    (item,) = pending_items(stripe_client, on_pro)
    assert item.amount == 1000 and item.parent.subscription_details.subscription
    line = on_pro.lines.get(key="usage:api_calls")
    assert (line.stripe_invoice_item_id, line.synced_amount) == (item.id, 1000)

    before = len(requests)
    assert invoice_sync_to_stripe(invoice_id=on_pro.pk).writes == 0
    assert len(requests) == before, "unchanged: no Stripe call"
    use(customer, 3_000, "b")
    use(customer, 10_000, "c")  # 63,000 beyond: 7 blocks begun
    before = len(requests)
    assert invoice_sync_to_stripe(invoice_id=on_pro.pk).updated == 1
    assert writes(stripe_emulator, before) == {"POST": 1}
    (item,) = pending_items(stripe_client, on_pro)
    assert item.amount == 1400
    assert not Invoice.objects.get(pk=on_pro.pk).has_drift

    # Two lines changed (a new held line, more use): two writes.
    now = timezone.now()
    for n in range(22):  # 20 included
        resource_record(
            customer=customer, feature="projects", resource_id=f"p{n}", action="attach",
            idempotency_key=f"p{n}", occurred_at=now,
        )  # fmt: skip
    use(customer, 10_000, "d")
    before = len(requests)
    result = invoice_sync_to_stripe(invoice_id=on_pro.pk)
    assert (result.created, result.updated) == (1, 1)
    assert writes(stripe_emulator, before) == {"POST": 2}
    held = on_pro.lines.get(key="held:projects")
    assert held.amount > 0 and held.synced_amount == held.amount
    assert sorted(item.amount for item in pending_items(stripe_client, on_pro)) == sorted(
        [1600, held.amount]
    )

    before, out = len(requests), StringIO()
    call_command("invoices_sync", "--customer", customer.customer_id, stdout=out)
    assert "1 invoices, 0 Stripe writes, 0 failed" in out.getvalue()
    assert len(requests) == before
    with pytest.raises(CommandError, match="No customer cust_nobody"):
        call_command("invoices_sync", "--customer", "cust_nobody")


def test_a_stripe_item_we_did_not_make_is_recorded_as_drift(on_pro, membership, stripe_client):
    use(membership.customer, 120_000, "a")
    invoice_sync_to_stripe(invoice_id=on_pro.pk)
    stripe_customer = BillingInfo.objects.for_customer(membership.customer).stripe_id
    stripe_client.v1.invoice_items.create(
        {"customer": stripe_customer, "amount": 777, "currency": "eur",
         "subscription": on_pro.subscription_id}
    )  # fmt: skip
    assert not invoice_drift_check(invoice_id=on_pro.pk)
    invoice = Invoice.objects.get(pk=on_pro.pk)
    assert (invoice.drift_ledger_amount, invoice.drift_stripe_amount) == (400, 1177)
    entry = Entry.objects.get(customer=membership.customer, kind="invoice_drift")
    assert entry.data["ledger_amount"] == 400 and entry.data["stripe_amount"] == 1177
    # Checked again with nothing new: the same drift is not recorded twice.
    assert not invoice_drift_check(invoice_id=on_pro.pk)
    assert Entry.objects.filter(kind="invoice_drift").count() == 1


def renew(stripe_emulator, clock, customer):  # noqa: F811
    paid = CustomerPlan.objects.get(customer=customer)
    period_end = int(paid.current_period_end.timestamp())
    stripe_emulator.advance_clock(clock.id, period_end + DAY)
    return period_end


def test_a_renewal_that_matches_is_finalized_and_charged(
    on_pro,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    use(customer, 150_000, "a")
    invoice_sync_to_stripe(invoice_id=on_pro.pk)
    use(customer, 20_000, "late")  # after the last periodic sync: the final sync brings it
    renew(stripe_emulator, clock, customer)
    invoice = Invoice.objects.get(pk=on_pro.pk)
    stripe_invoice = stripe_client.v1.invoices.retrieve(invoice.stripe_invoice_id)
    assert stripe_invoice.status == "paid"
    assert stripe_invoice.total == 4900 + 1400 == invoice.total
    assert invoice.status == Invoice.Status.FINALIZED and not invoice.has_drift
    assert (invoice.number, invoice.hosted_invoice_url, invoice.invoice_pdf) == (
        stripe_invoice.number, stripe_invoice.hosted_invoice_url, stripe_invoice.invoice_pdf
    )  # fmt: skip
    assert invoice.number and invoice.hosted_invoice_url and invoice.invoice_pdf
    items = [
        line for line in stripe_invoice.lines.data if line.parent.type == "invoice_item_details"
    ]
    assert [line.amount for line in items] == [1400]
    # The next cycle is open, and its first sync has nothing to send.
    following = Invoice.objects.get(customer=customer, status=Invoice.Status.OPEN)
    assert following.period_start == invoice.period_end
    assert invoice_sync_to_stripe(invoice_id=following.pk).writes == 0


def test_a_renewal_that_does_not_match_stays_held_with_the_drift_recorded(
    on_pro,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
    admin_client,
):
    customer = membership.customer
    use(customer, 150_000, "a")
    invoice_sync_to_stripe(invoice_id=on_pro.pk)
    stripe_customer = BillingInfo.objects.for_customer(customer).stripe_id
    stripe_client.v1.invoice_items.create(
        {"customer": stripe_customer, "amount": 250, "currency": "eur",
         "subscription": on_pro.subscription_id, "description": "made by hand"}
    )  # fmt: skip
    period_end = renew(stripe_emulator, clock, customer)
    stripe_emulator.advance_clock(clock.id, period_end + 4 * DAY)  # well past the hour
    invoice = Invoice.objects.get(pk=on_pro.pk)
    stripe_invoice = stripe_client.v1.invoices.retrieve(invoice.stripe_invoice_id)
    assert (stripe_invoice.status, stripe_invoice.auto_advance) == ("draft", False)
    assert stripe_invoice.total == 4900 + 1000 + 250
    assert invoice.is_open and (invoice.drift_ledger_amount, invoice.drift_stripe_amount) == (
        5900, 6150
    )  # fmt: skip
    entry = Entry.objects.filter(customer=customer, kind="invoice_drift").first()
    assert entry.data["stripe_invoice"] == invoice.stripe_invoice_id
    assert not stripe_client.v1.charges.list({"customer": stripe_customer}).data[1:]
    # Staff find it among the invoices whose figures differ from Stripe's.
    page = admin_client.get(reverse("admin:billing_invoice_changelist"), {"drift": "yes"})
    assert page.status_code == 200
    assert list(page.context["cl"].queryset) == [invoice]


def test_faults_in_a_third_of_the_sync_calls_never_double_an_item_or_miss_a_cent(
    on_pro,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    kinds = ["error_500", "error_429", "timeout"]
    failures = 0
    use(customer, 100_000, "included")
    for step in range(9):
        use(customer, 10_000, f"step-{step}")  # a block more each time: every sync writes
        if step % 3 == 0:
            # Enough of one kind that stripe-python's own retry meets it too.
            stripe_emulator.faults.add(
                {"kind": kinds[step // 3], "count": 2, "path": "/v1/invoiceitems", "seconds": 0}
            )
        try:
            invoice_sync_to_stripe(invoice_id=on_pro.pk)
        except GatewayUnavailable:
            failures += 1
        stripe_emulator.faults.clear()
    assert failures == 3
    # The final sync meets a fault too: its event is retried, with the same keys.
    use(customer, 25_000, "last")
    stripe_emulator.faults.add({"kind": "error_500", "count": 2, "path": "/v1/invoiceitems"})
    renew(stripe_emulator, clock, customer)
    invoice = Invoice.objects.get(pk=on_pro.pk)
    stripe_invoice = stripe_client.v1.invoices.retrieve(invoice.stripe_invoice_id)
    ledger = sum(line.amount for line in invoice.lines.all())
    assert stripe_invoice.status == "paid" and stripe_invoice.total == ledger == invoice.total
    tagged = [line for line in stripe_invoice.lines.data if LINE_METADATA in (line.metadata or {})]
    assert len(tagged) == 1, "one item per line, never doubled"
    assert stripe_invoice.total == 4900 + 200 * 12  # 115,000 beyond: 12 blocks begun
    stripe_customer = BillingInfo.objects.for_customer(customer).stripe_id
    assert gateway.invoice_items_list(stripe_customer_id=stripe_customer) == []


def test_stripe_clock_advance_runs_a_cycle_and_processes_its_events(
    settings, signed_in_client, membership, other_membership, stripe_emulator, stripe_client,
    catalog,  # noqa: F811
):  # fmt: skip
    settings.STRIPE_TEST_CLOCKS = True
    customer = membership.customer
    end_trial(customer)
    upgrade(signed_in_client, stripe_emulator, "pro")
    stripe_emulator.deliver()
    stripe_customer = stripe_client.v1.customers.retrieve(
        BillingInfo.objects.for_customer(customer).stripe_id
    )
    own_clock = stripe_client.v1.test_helpers.test_clocks.retrieve(stripe_customer.test_clock)
    assert own_clock.name == customer.customer_id
    first = Invoice.objects.get(customer=customer)
    use(customer, 150_000, "a")
    invoice_sync_to_stripe(invoice_id=first.pk)

    out = StringIO()
    call_command("stripe_clock_advance", customer.customer_id, "--days", "32", stdout=out)
    # Returned with the renewal's events processed, no webhook delivered meanwhile.
    assert "(ready)" in out.getvalue()
    first.refresh_from_db()
    assert first.status == Invoice.Status.FINALIZED and first.total == 4900 + 1000
    assert stripe_client.v1.invoices.retrieve(first.stripe_invoice_id).status == "paid"
    assert Invoice.objects.filter(customer=customer, status=Invoice.Status.OPEN).count() == 1
    stripe_emulator.deliver()  # the same events by webhook now change nothing
    assert Invoice.objects.filter(customer=customer).count() == 2

    with pytest.raises(CommandError, match="has no Stripe customer"):
        call_command("stripe_clock_advance", other_membership.customer.customer_id, "--days", "1")
    with pytest.raises(CommandError, match="--days must be more than 0"):
        call_command("stripe_clock_advance", customer.customer_id, "--days", "0")


def test_a_create_whose_answer_was_lost_is_replayed_not_made_twice(
    on_pro, membership, stripe_emulator, stripe_client
):
    customer = membership.customer
    use(customer, 150_000, "a")
    invoice = Invoice.objects.get(pk=on_pro.pk)
    refresh_lines(invoice)
    line = invoice.lines.get(key="usage:api_calls")
    stripe_customer = BillingInfo.objects.for_customer(customer).stripe_id
    # Stripe made the item, but its answer never reached us (nothing was recorded).
    lost = gateway.invoice_item_create(
        stripe_customer_id=stripe_customer, amount=1000, currency="eur",
        description=line.description,
        period=(int(line.period_start.timestamp()), int(line.period_end.timestamp())),
        metadata={LINE_METADATA: str(line.pk)}, subscription_id=invoice.subscription_id,
        key=gateway.idempotency_key("invoice-item", line.pk, 0, "pending", 1000),
    )  # fmt: skip
    assert invoice_sync_to_stripe(invoice_id=invoice.pk).created == 1
    assert [item.id for item in pending_items(stripe_client, invoice)] == [lost["id"]]

    # Lost again, and the line changed before the retry: the item made meanwhile carries
    # our line id, so the drift check removes it as a stray.
    use(customer, 30_000, "b")
    refresh_lines(invoice)
    line.refresh_from_db()
    stray = gateway.invoice_item_create(
        stripe_customer_id=stripe_customer, amount=1400, currency="eur", description="x",
        period=(0, 1), metadata={LINE_METADATA: str(line.pk)},
        subscription_id=invoice.subscription_id, key="portal:lost-attempt",
    )  # fmt: skip
    assert invoice_sync_to_stripe(invoice_id=invoice.pk).updated == 1
    items = pending_items(stripe_client, invoice)
    assert [(item.id, item.amount) for item in items] == [(lost["id"], 1600)]
    assert stray["id"] not in [item.id for item in items]
    assert not Invoice.objects.get(pk=invoice.pk).has_drift


def refresh_lines(invoice) -> None:
    from billing.invoicing import invoice_lines_refresh

    invoice_lines_refresh(invoice=invoice)


def test_a_bulk_run_keeps_to_the_request_rate(monkeypatch):
    from billing import invoice_sync

    now = [100.0]
    slept = []
    monkeypatch.setattr(invoice_sync.time, "monotonic", lambda: now[0])

    def sleep(seconds):
        slept.append(round(seconds, 3))
        now[0] += seconds

    monkeypatch.setattr(invoice_sync.time, "sleep", sleep)
    pacer = invoice_sync.RequestPacer(per_second=25)
    for _ in range(50):
        pacer.wait()
    assert now[0] - 100.0 == pytest.approx(49 / 25)  # 50 requests: 1.96 s, never faster
    assert set(slept) == {0.04}


def test_an_item_made_pending_after_the_renewal_was_drafted_is_moved_onto_the_draft(
    on_pro,
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    """The portal is down across the renewal, so a periodic sync that has not heard of
    the draft makes the line's item pending: it would go to the next cycle. When the
    events are recovered, the settle moves it onto the draft and the totals match."""
    customer = membership.customer
    use(customer, 150_000, "a")
    stripe_emulator.endpoint_down = True
    renew(stripe_emulator, clock, customer)
    assert invoice_sync_to_stripe(invoice_id=on_pro.pk).created == 1
    (misplaced,) = pending_items(stripe_client, on_pro)
    stripe_emulator.endpoint_down = False
    # While another sync of the invoice holds its claim, the settle waits (retried later)
    # and the draft stays held.
    (draft,) = stripe_client.v1.invoices.list({"customer": misplaced.customer, "status": "draft"})
    claim = StripeObjectSync.objects.filter(stripe_id=f"portal-invoice:{on_pro.pk}")
    claim.update(claimed_by="other", claimed_until=timezone.now() + timedelta(minutes=1))
    with pytest.raises(GatewayUnavailable):
        invoice_renewal_settle(stripe_invoice_id=draft.id)
    assert stripe_client.v1.invoices.retrieve(draft.id).auto_advance is False
    claim.update(claimed_by="", claimed_until=None)
    events_reconcile()
    events_reconcile()  # what the first pass caused (the finalization's events)
    invoice = Invoice.objects.get(pk=on_pro.pk)
    stripe_invoice = stripe_client.v1.invoices.retrieve(invoice.stripe_invoice_id)
    assert (stripe_invoice.status, stripe_invoice.total) == ("paid", 4900 + 1000)
    assert invoice.status == Invoice.Status.FINALIZED and not invoice.has_drift
    assert pending_items(stripe_client, invoice) == []
    with pytest.raises(Exception, match="No such invoiceitem"):
        stripe_client.v1.invoice_items.retrieve(misplaced.id)


def test_beat_syncs_every_open_invoice_at_the_configured_interval(
    settings, on_pro, membership, stripe_client
):
    from billing import tasks

    schedule = settings.CELERY_BEAT_SCHEDULE["invoices-sync"]
    assert (schedule["task"], schedule["schedule"]) == (
        "billing.tasks.invoices_sync", settings.INVOICE_SYNC_INTERVAL_SECONDS
    )  # fmt: skip
    use(membership.customer, 150_000, "a")
    assert tasks.invoices_sync.delay().get() == 1
    assert tasks.invoices_sync.delay().get() == 0
    assert [item.amount for item in pending_items(stripe_client, on_pro)] == [1000]
