"""Renewals through the Stripe emulator, for `make simulate` and (small) for the suite:
customers on test clocks of their own, random usage with duplicates and retried posts,
projects attached and detached mid-cycle, periodic syncs between them, and each cycle's
renewal settled by the portal. The figure that matters: the largest difference between a
finalized Stripe invoice and our ledger's lines, in minor units (it should be 0).

`simulate_recovery`: renewals of customers with 1 to 4 cards that work, decline finally,
decline retryably or need authentication, with lost answers to payment attempts. The
figures that matter: invoices paid twice, and paid by another card than the first working
one in the order (both 0), and gaps in the timeline (none)."""

import random
import time
from dataclasses import dataclass, field
from datetime import timedelta

from audit.models import Entry
from billing.cards import billing_info_ensure, payment_method_sync
from billing.errors import GatewayUnavailable
from billing.events import stripe_event_process
from billing.invoice_sync import invoice_sync_to_stripe
from billing.models import Invoice, InvoiceRecovery, PaymentAttempt, PaymentMethod, StripeEvent
from billing.webhook_events import WEBHOOK_EVENTS
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


# --- Collecting failed renewals (`make simulate` with SIMULATE_RECOVERY) --------------------

# How each simulated card behaves when charged, set with the emulator's charge behaviour.
CARD_KINDS = {
    "working": [{}],
    "final": [{"decline_code": code} for code in ("expired_card", "lost_card", "stolen_card",
                                                  "incorrect_cvc", "fraudulent")],
    "retryable": [{"decline_code": code} for code in ("insufficient_funds", "generic_decline",
                                                      "processing_error", "do_not_honor")],
    "authentication": [{"requires_action": True}],
}  # fmt: skip
# Final declines often enough that later cards get their turn.
KIND_WEIGHTS = (35, 40, 15, 10)
# Distinct card numbers: the same number twice would be one card, listed once.
CARD_TOKENS = ("visa", "mastercard", "amex", "discover", "jcb", "diners")


@dataclass
class RecoveryReport:
    renewals: int = 0
    paid_by_primary: int = 0
    recovered: int = 0  # paid by a later card in the order
    unpaid: int = 0
    attempts: int = 0
    faults: int = 0  # answers set to be lost
    answers_lost: int = 0  # …and lost: a payment attempt was made and its answer dropped
    paid_twice: int = 0
    wrong_card: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    timeline_gaps: list[tuple[str, str]] = field(default_factory=list)


def expected_payer(kinds: list[str]) -> int | None:
    """The card that should pay: Stripe charges the first; only a final decline moves the
    payment on to the next card, so the first working card after nothing but final declines."""
    for position, kind in enumerate(kinds):
        if kind == "working":
            return position
        if kind != "final":
            return None
    return None


def _customer_with_cards(stripe_emulator, stripe_client, price: str, n: int, start: int, kinds):
    customer = CustomerFactory(name=f"Recovery {n}")
    clock = stripe_client.v1.test_helpers.test_clocks.create({"frozen_time": start})
    stripe_client.v1.customers.create(
        {"email": f"rec{n}@example.com", "test_clock": clock.id,
         "metadata": {"customer_id": customer.customer_id}}
    )  # fmt: skip
    stripe_id = billing_info_ensure(customer=customer, email=f"rec{n}@example.com").stripe_id
    cards = []
    for token in CARD_TOKENS[: len(kinds)]:
        attached = stripe_client.v1.payment_methods.attach(
            f"pm_card_{token}", {"customer": stripe_id}
        )
        payment_method_sync(stripe_id=attached.id)  # in order: the first is primary
        cards.append(attached.id)
    stripe_client.v1.subscriptions.create(
        {"customer": stripe_id, "items": [{"price": price}],
         "metadata": {"customer_id": customer.customer_id, "plan_code": "starter"}}
    )  # fmt: skip
    stripe_emulator.deliver()
    return customer, clock, cards


def clock_advance_held(stripe_client, clock_id: str, frozen_time: int) -> None:
    """Advance a test clock and wait until it is ready, leaving its webhooks queued."""
    clock = stripe_client.v1.test_helpers.test_clocks.advance(
        clock_id, {"frozen_time": frozen_time}
    )
    while clock.status == "advancing":
        time.sleep(0.01)
        clock = stripe_client.v1.test_helpers.test_clocks.retrieve(clock_id)


def _events_retried(rounds: int = 12) -> None:
    """What the task's retries and the reconcile do later: process again, with the same
    keys, every event whose processing failed (Stripe unreachable meanwhile)."""
    for _ in range(rounds):
        stuck = list(
            StripeEvent.objects.exclude(status=StripeEvent.Status.PROCESSED).values_list(
                "pk", flat=True
            )
        )
        if not stuck:
            return
        for event_id in stuck:
            try:
                stripe_event_process(event_id=event_id)
            except GatewayUnavailable:
                continue


def simulate_recovery(
    stripe_emulator, stripe_client, *, renewals: int, seed: int, start: int
) -> RecoveryReport:
    """Renewals of customers with 1 to 4 cards of random kinds, some with the answers to
    their payment attempts lost after Stripe made them (`timeout_after_commit`)."""
    rng = random.Random(seed)
    prices = {p.lookup_key: p.id for p in stripe_client.v1.prices.list({"limit": 100}).data}
    # Only the events the portal subscribes to in production (`stripe_setup`).
    for endpoint in stripe_client.v1.webhook_endpoints.list().data:
        stripe_client.v1.webhook_endpoints.update(
            endpoint.id, {"enabled_events": list(WEBHOOK_EVENTS)}
        )
    report = RecoveryReport()
    for n in range(renewals):
        kinds = rng.choices(list(CARD_KINDS), weights=KIND_WEIGHTS, k=rng.randint(1, 4))
        customer, clock, cards = _customer_with_cards(
            stripe_emulator, stripe_client, prices["starter_monthly"], n, start, kinds
        )
        for card, kind in zip(cards, kinds, strict=True):
            stripe_emulator.emulator.card_behavior_set(card, **rng.choice(CARD_KINDS[kind]))
        plan = CustomerPlan.objects.get(customer=customer)
        period_end = int(plan.current_period_end.timestamp())
        clock_advance_held(stripe_client, clock.id, period_end + 60)  # the draft, unseen yet
        [draft] = [
            invoice
            for invoice in stripe_client.v1.invoices.list({"subscription": plan.subscription_id})
            if invoice.billing_reason == "subscription_cycle"
        ]
        lost = rng.random() < 0.5
        if lost:  # the answers of the next 1 to 3 payment attempts are lost
            count = rng.randint(1, 3)
            stripe_emulator.faults.add(
                {"kind": "timeout_after_commit", "count": count, "method": "POST",
                 "path": f"/v1/invoices/{draft.id}/pay", "seconds": 0}
            )  # fmt: skip
            report.faults += count
        stripe_emulator.deliver()  # the portal settles the draft: Stripe charges the primary
        stripe_emulator.advance_clock(clock.id, period_end + 3 * HOUR)
        _events_retried()
        left = sum(fault["count"] for fault in stripe_emulator.faults.listing())
        report.answers_lost += count - left if lost else 0
        stripe_emulator.faults.clear()
        report.renewals += 1
        _recovery_check(stripe_client, report, customer, draft.id, cards, kinds)
    return report


def _recovery_check(stripe_client, report, customer, invoice_id, cards, kinds) -> None:
    payments = stripe_client.v1.invoice_payments.list({"invoice": invoice_id, "limit": 100})
    paid = [
        stripe_client.v1.payment_intents.retrieve(payment.payment.payment_intent).payment_method
        for payment in payments.data
        if payment.status == "paid"
    ]
    position = expected_payer(kinds)
    expected = [] if position is None else [cards[position]]
    report.paid_twice += len(paid) > 1
    if paid != expected:
        report.wrong_card.append((invoice_id, kinds, paid))
    if not paid:
        report.unpaid += 1
    elif position == 0:
        report.paid_by_primary += 1
    else:
        report.recovered += 1
        primary = PaymentMethod.objects.for_customer(customer).order_by("order").first()
        if primary.stripe_id != paid[0]:
            report.timeline_gaps.append((invoice_id, "the card that paid is not the primary"))
    recovery = InvoiceRecovery.objects.filter(stripe_invoice_id=invoice_id).first()
    if position == 0:
        return
    if recovery is None:
        report.timeline_gaps.append((invoice_id, "no recovery for a failed payment"))
        return
    entries = Entry.objects.filter(customer=customer, data__invoice=invoice_id)
    attempts = list(recovery.attempts.all())
    report.attempts += len(attempts)
    if any(attempt.outcome == PaymentAttempt.Outcome.PENDING for attempt in attempts):
        report.timeline_gaps.append((invoice_id, "an attempt is still pending"))
    for attempt in attempts:
        told = list(entries.filter(kind="payment_attempted", data__attempt=attempt.pk))
        if len(told) != 1:
            report.timeline_gaps.append((invoice_id, f"attempt {attempt.pk} not once"))
        elif not (told[0].data.get("brand") and told[0].data.get("last4")):
            report.timeline_gaps.append((invoice_id, f"attempt {attempt.pk} without its card"))
    if entries.filter(kind="payment_failed").count() != recovery.round:
        report.timeline_gaps.append((invoice_id, "a Stripe attempt missing"))
    if entries.filter(kind="payment_recovered").count() != (1 if paid else 0):
        report.timeline_gaps.append((invoice_id, "recovery not recorded"))
