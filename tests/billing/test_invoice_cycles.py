"""Through the Stripe emulator: a paid plan's start opens its cycle's current invoice, and
the renewal's `invoice.finalized` opens the next cycle's, once each however often the
webhooks arrive."""

from datetime import UTC, datetime

import pytest

from billing.models import Invoice, StripeEvent
from billing.webhooks import on_invoice_finalized
from licensing.models import CustomerPlan
from tests.billing.test_plans import DAY, catalog, clock, end_trial, upgrade  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # as the plan tests: on-commit work


def test_a_paid_plan_opens_its_cycle_and_the_renewal_opens_the_next(
    signed_in_client,
    membership,
    other_membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    end_trial(customer)
    upgrade(signed_in_client, stripe_emulator, "pro")
    stripe_emulator.deliver()
    paid = CustomerPlan.objects.get(customer=customer)
    (first,) = Invoice.objects.filter(customer=customer)
    assert (first.period_start, first.period_end) == (
        paid.current_period_start,
        paid.current_period_end,
    )
    assert (first.plan.code, first.currency, first.is_open) == ("pro", "eur", True)
    # Lines with nothing to bill yet are not made; the plan's price is.
    assert {line.key: line.amount for line in first.lines.all()} == {"plan": 4900}
    assert not Invoice.objects.filter(customer=other_membership.customer).exists()

    stripe_emulator.webhook_statuses.clear()
    period_end = int(paid.current_period_end.timestamp())
    stripe_emulator.advance_clock(clock.id, period_end + DAY)
    # Our invoice.created reaction held the draft, found its total to be our ledger's and
    # finalized it at once: no draft is left waiting for Stripe's hour.
    drafts = stripe_client.v1.invoices.list(
        {"subscription": paid.subscription_id, "status": "draft"}
    ).data
    assert drafts == []
    finalized = [
        event
        for event in stripe_client.v1.events.list({"type": "invoice.finalized", "limit": 100})
        if event.data.object.billing_reason == "subscription_cycle"
    ]
    assert finalized, "the renewal's invoice was finalized at Stripe"
    renewed = CustomerPlan.objects.get(customer=customer)
    assert renewed.current_period_start == datetime.fromtimestamp(period_end, UTC)
    second = Invoice.objects.get(customer=customer, period_start=renewed.current_period_start)
    assert second.period_end == renewed.current_period_end
    assert Invoice.objects.filter(customer=customer).count() == 2

    # The invoice.finalized handler alone opens the next cycle too (whatever came first).
    second_id = second.pk
    second.delete()
    on_invoice_finalized(StripeEvent.objects.get(pk=finalized[0].id))
    reopened = Invoice.objects.get(customer=customer, period_start=renewed.current_period_start)
    assert reopened.pk != second_id
    assert Invoice.objects.filter(customer=customer).count() == 2
