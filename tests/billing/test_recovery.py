"""Collecting a failed renewal through the Stripe emulator: the customer's next card in
their order pays when the primary's decline is final, and becomes the primary; when every
card fails, an email per Stripe attempt with the pay link and a banner on every page until
the invoice is paid; what cannot be paid is refused with nothing charged."""

# ruff: noqa: F811 - the fixtures imported from the other billing tests are parameters here

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

from audit.models import Entry
from billing import gateway, recovery
from billing.cards import billing_info_ensure
from billing.events import stripe_event_process
from billing.models import InvoiceRecovery, PaymentAttempt, PaymentMethod, StripeEvent
from licensing.api.authentication import service_key_create
from licensing.models import CustomerPlan
from tests.billing.simulation import clock_advance_held
from tests.billing.test_cards import add_card, card_order, other_card, stripe_default  # noqa: F401
from tests.billing.test_plans import DAY, catalog, clock, end_trial, upgrade  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # emails and tasks are queued on commit


def paid_by(stripe_client, invoice_id: str) -> list[str]:
    """The card of each payment that paid the invoice (one, or it was paid twice)."""
    payments = stripe_client.v1.invoice_payments.list({"invoice": invoice_id, "limit": 100})
    return [
        stripe_client.v1.payment_intents.retrieve(payment.payment.payment_intent).payment_method
        for payment in payments.data
        if payment.status == "paid"
    ]


def renew(stripe_emulator, stripe_client, clock, customer):
    """Advance the customer's clock through the renewal: the draft, then (an hour after
    it was answered) its finalization and Stripe's first attempt. Returns the invoice."""
    plan = CustomerPlan.objects.get(customer=customer)
    period_end = int(plan.current_period_end.timestamp())
    stripe_emulator.advance_clock(clock.id, period_end + DAY)
    stripe_emulator.advance_clock(clock.id, period_end + DAY + 2 * 3600)
    [renewal] = [
        invoice
        for invoice in stripe_client.v1.invoices.list({"subscription": plan.subscription_id})
        if invoice.billing_reason == "subscription_cycle"
    ]
    return renewal


def subscribed_with(client, membership, stripe_emulator, *tokens):
    """A paid Starter plan with the first token's card; the others added after, in order."""
    end_trial(membership.customer)
    upgrade(client, stripe_emulator, "starter", tokens[0])
    stripe_emulator.deliver()
    for token in tokens[1:]:
        add_card(client, stripe_emulator, token)
    return card_order(membership.customer)


def test_a_final_decline_is_paid_by_the_next_card_which_becomes_primary(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,
):
    customer = membership.customer
    visa, mastercard = subscribed_with(
        signed_in_client, membership, stripe_emulator, "pm_card_visa", "pm_card_mastercard"
    )
    stripe_emulator.emulator.card_behavior_set(visa, decline_code="expired_card")
    mail.outbox.clear()

    renewal = renew(stripe_emulator, stripe_client, clock, customer)

    renewal = stripe_client.v1.invoices.retrieve(renewal.id)
    assert renewal.status == "paid"
    assert paid_by(stripe_client, renewal.id) == [mastercard]
    assert card_order(customer) == [mastercard, visa]
    assert stripe_default(stripe_client, membership) == mastercard
    [attempt] = PaymentAttempt.objects.all()
    assert (attempt.payment_method, attempt.outcome) == (mastercard, "paid")
    assert attempt.card_label == "Mastercard ending 4444"
    entry = Entry.objects.get(kind="payment_attempted", data__attempt=attempt.pk)
    assert (entry.data["brand"], entry.data["last4"]) == ("mastercard", "4444")
    saved = InvoiceRecovery.objects.get(stripe_invoice_id=renewal.id)
    assert saved.status == InvoiceRecovery.Status.RECOVERED
    assert (saved.round_payment_method, saved.round_decline_code) == (visa, "expired_card")

    sentences = list(
        Entry.objects.filter(customer=customer, kind__startswith="payment_")
        .order_by("id")
        .values_list("sentence", flat=True)
    )
    assert sentences == [
        "Payment of €19.00 failed with Visa ending 4242.",
        "Payment of €19.00 tried with Mastercard ending 4444: paid.",
        "Payment of €19.00 made with Mastercard ending 4444; it is now the primary card.",
    ]
    [email] = [m for m in mail.outbox if "another card" in m.subject]
    assert "your primary card, Visa ending 4242, was declined: the card has expired" in email.body
    assert "Mastercard ending 4444 was charged instead" in email.body
    assert not [m for m in mail.outbox if "failed" in m.subject]
    # The banner never showed: the invoice was paid while the event was processed.
    assert "Pay now" not in signed_in_client.get(reverse("home")).content.decode()


# The renewal of a plan started on 2 April fails on 3 May (the draft a day after the period
# ends, its payment an hour after the draft was answered).
APRIL_2 = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)


def check_access(client, service_key, customer):
    return client.post(
        reverse("api_check_access"),
        {"customer_id": customer.customer_id, "feature": "api_calls"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {service_key}"},
    )


def test_every_card_failing_emails_each_attempt_shows_the_banner_and_the_hosted_page_clears_it(
    client,
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    catalog,
    settings,
):
    settings.PAST_DUE_GRACE_DAYS = 7
    customer = membership.customer
    _record, service_key = service_key_create(name="tests")
    api = Client()
    with time_machine.travel(APRIL_2, tick=False) as traveller:
        clock = stripe_client.v1.test_helpers.test_clocks.create(
            {"frozen_time": int(APRIL_2.timestamp())}
        )
        stripe_client.v1.customers.create(
            {"email": "owner@example.com", "test_clock": clock.id,
             "metadata": {"customer_id": customer.customer_id}}
        )  # fmt: skip
        billing_info_ensure(customer=customer, email="owner@example.com")
        visa, mastercard = subscribed_with(
            signed_in_client, membership, stripe_emulator, "pm_card_visa", "pm_card_mastercard"
        )
        stripe_emulator.emulator.card_behavior_set(visa, decline_code="lost_card")
        stripe_emulator.emulator.card_behavior_set(mastercard, decline_code="insufficient_funds")
        mail.outbox.clear()

        period_end = int(CustomerPlan.objects.get(customer=customer).current_period_end.timestamp())
        for at in (period_end + DAY, period_end + DAY + 2 * 3600):
            traveller.move_to(datetime.fromtimestamp(at, UTC))
            stripe_emulator.advance_clock(clock.id, at)
        [renewal] = stripe_client.v1.invoices.list(
            {"customer": clock_customer(membership), "status": "open"}
        ).data
        failed_at = InvoiceRecovery.objects.get(stripe_invoice_id=renewal.id).failed_at
        assert failed_at.date() == datetime(2026, 5, 3).date()

        # Mastercard was tried (Visa's decline is final) and declined: nothing paid.
        assert [(a.payment_method, a.outcome) for a in PaymentAttempt.objects.all()] == [
            (mastercard, "declined")
        ]
        assert paid_by(stripe_client, renewal.id) == []
        failed = [m for m in mail.outbox if m.subject == "Your payment of €19.00 failed"]
        assert len(failed) == renewal.attempt_count == 1
        assert renewal.hosted_invoice_url in failed[0].body
        assert settings.PORTAL_BASE_URL + reverse("billing:payment_methods") in failed[0].body
        assert "Visa ending 4242, was declined: the card's bank refused it" in failed[0].body
        assert "Mastercard ending 4444: insufficient funds" in failed[0].body

        banner = "Your payment of €19.00 failed on 3 May."
        for url in (reverse("home"), reverse("billing:overview"), reverse("billing:invoices")):
            html = signed_in_client.get(url).content.decode()
            assert banner in html, url
            assert renewal.hosted_invoice_url in html

        for days, status, reason in ((3, 200, "ok"), (6, 200, "ok"), (8, 403, "past_due")):
            moment = failed_at + timedelta(days=days)
            traveller.move_to(moment)
            if days == 6:  # Stripe's clock too: its retries of the schedule, if any, run
                stripe_emulator.advance_clock(clock.id, int(moment.timestamp()))
            answer = check_access(api, service_key, customer)
            assert (answer.status_code, answer.json()["reason"]) == (status, reason), days
            warning = "payment_past_due" if status == 200 else None
            assert answer.json()["warning"] == warning
        assert banner in signed_in_client.get(reverse("home")).content.decode()
        # One email for each of Stripe's attempts, each with the pay link.
        attempts = stripe_client.v1.invoices.retrieve(renewal.id).attempt_count
        failed = [m for m in mail.outbox if m.subject == "Your payment of €19.00 failed"]
        assert len(failed) == attempts
        assert all(renewal.hosted_invoice_url in message.body for message in failed)

        # Paying on Stripe's hosted invoice page clears the banner and the past-due state.
        page = stripe_emulator.http.dispatch(
            "POST", renewal.hosted_invoice_url, {}, "payment_method=pm_card_visa"
        )
        assert page.status == 200, page.body[:300]
        stripe_emulator.deliver()
        assert stripe_client.v1.invoices.retrieve(renewal.id).status == "paid"
        assert InvoiceRecovery.objects.get().status == InvoiceRecovery.Status.PAID
        assert "failed on" not in signed_in_client.get(reverse("home")).content.decode()
        answer = check_access(api, service_key, customer)
        assert (answer.status_code, answer.json()["warning"]) == (200, None)
        # Still one email per Stripe attempt: the page's payment sent none.
        assert len([m for m in mail.outbox if "failed" in m.subject]) == attempts


def clock_customer(membership) -> str:
    return membership.customer.billing.billing_info.stripe_id


def charges_of(stripe_client, stripe_customer: str) -> list[tuple[str, str]]:
    listed = stripe_client.v1.charges.list({"customer": stripe_customer, "limit": 100}).data
    return sorted((charge.id, charge.status) for charge in listed)


def renewal_draft(stripe_emulator, stripe_client, clock, customer) -> str:
    """Move the clock to the renewal, holding its webhooks: the draft exists and the portal
    has not seen it yet (deliver them to go on)."""
    plan = CustomerPlan.objects.get(customer=customer)
    period_end = int(plan.current_period_end.timestamp())
    clock_advance_held(stripe_client, clock.id, period_end + 60)
    [draft] = [
        invoice
        for invoice in stripe_client.v1.invoices.list({"subscription": plan.subscription_id})
        if invoice.billing_reason == "subscription_cycle"
    ]
    assert draft.status == "draft"
    return draft.id


def test_paying_an_invoice_paid_void_or_with_another_customers_card_is_refused_and_charges_nothing(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,
    other_card,
):
    customer = membership.customer
    [visa] = subscribed_with(signed_in_client, membership, stripe_emulator, "pm_card_visa")
    stripe_customer = clock_customer(membership)
    paid = renew(stripe_emulator, stripe_client, clock, customer)
    assert stripe_client.v1.invoices.retrieve(paid.id).status == "paid"
    before = charges_of(stripe_client, stripe_customer)

    again = gateway.invoice_pay_with(invoice_id=paid.id, payment_method_id=visa, key="k-paid")
    assert (again.outcome, again.invoice_status) == ("not_payable", "paid")
    assert recovery.invoice_payment_recover(stripe_invoice_id=paid.id) is None

    stripe_client.v1.invoice_items.create(
        {"customer": stripe_customer, "amount": 700, "currency": "eur"}
    )
    manual = stripe_client.v1.invoices.create(
        {"customer": stripe_customer, "pending_invoice_items_behavior": "include"}
    )
    stripe_client.v1.invoices.finalize_invoice(manual.id, {"auto_advance": False})
    # Another customer's card is refused by Stripe, naming the card: nothing is charged.
    theirs = gateway.invoice_pay_with(
        invoice_id=manual.id, payment_method_id=other_card, key="k-theirs"
    )
    assert theirs.outcome == "card_unusable"
    stripe_client.v1.invoices.void_invoice(manual.id)
    void = gateway.invoice_pay_with(invoice_id=manual.id, payment_method_id=visa, key="k-void")
    assert (void.outcome, void.invoice_status) == ("not_payable", "void")

    # A card of theirs, added while our invoice were open, is never tried on ours.
    assert recovery.card_try_on_open_invoices(payment_method_id=other_card) == []
    assert charges_of(stripe_client, stripe_customer) == before
    assert PaymentAttempt.objects.count() == 0


def test_a_card_detached_at_stripe_meanwhile_is_skipped_and_the_order_repaired(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,
):
    customer = membership.customer
    visa, amex, mastercard = subscribed_with(
        signed_in_client, membership, stripe_emulator,
        "pm_card_visa", "pm_card_amex", "pm_card_mastercard",
    )  # fmt: skip
    stripe_emulator.emulator.card_behavior_set(visa, decline_code="stolen_card")
    # Detached at Stripe, and our list has not heard of it yet.
    stripe_client.v1.payment_methods.detach(amex)
    stripe_emulator.deliver()
    PaymentMethod.objects.filter(stripe_id=mastercard).update(order=2)
    PaymentMethod.objects.create(
        billing_info=customer.billing.billing_info, stripe_id=amex, order=1
    )
    assert card_order(customer) == [visa, amex, mastercard]

    renewal = renew(stripe_emulator, stripe_client, clock, customer)

    attempts = [(a.payment_method, a.outcome) for a in PaymentAttempt.objects.order_by("id")]
    assert attempts == [(amex, "skipped"), (mastercard, "paid")]
    assert paid_by(stripe_client, renewal.id) == [mastercard]
    assert card_order(customer) == [mastercard, visa]
    assert stripe_default(stripe_client, membership) == mastercard


def test_stripe_unreachable_while_recovering_is_retried_later_with_the_same_key(
    signed_in_client,
    membership,
    stripe_emulator,
    stripe_client,
    clock,
):
    customer = membership.customer
    visa, mastercard = subscribed_with(
        signed_in_client, membership, stripe_emulator, "pm_card_visa", "pm_card_mastercard"
    )
    stripe_emulator.emulator.card_behavior_set(visa, decline_code="expired_card")
    draft = renewal_draft(stripe_emulator, stripe_client, clock, customer)
    # Mastercard's payment goes through at Stripe and its answer is lost; then Stripe is
    # unreachable for every retry: the event's processing gives up for now, the attempt
    # left pending.
    pay = f"/v1/invoices/{draft}/pay"
    for kind, count in (("timeout_after_commit", 1), ("timeout", 100)):
        stripe_emulator.faults.add(
            {"kind": kind, "count": count, "method": "POST", "path": pay, "seconds": 0}
        )
    stripe_emulator.deliver()
    [attempt] = PaymentAttempt.objects.all()
    assert (attempt.payment_method, attempt.outcome) == (mastercard, "pending")
    assert paid_by(stripe_client, draft) == [mastercard]
    failed = StripeEvent.objects.get(type="invoice.payment_failed", object_id=draft)
    assert failed.status == StripeEvent.Status.FAILED
    assert card_order(customer) == [visa, mastercard]  # nothing else was tried meanwhile

    stripe_emulator.faults.clear()
    assert stripe_event_process(event_id=failed.pk)  # the task's later retry
    stripe_emulator.deliver()

    [attempt] = PaymentAttempt.objects.all()
    assert attempt.outcome == "paid"  # Stripe replayed its answer to the same key
    assert paid_by(stripe_client, draft) == [mastercard]
    assert card_order(customer) == [mastercard, visa]
    assert Entry.objects.filter(kind="payment_attempted", customer=customer).count() == 1


def test_a_card_added_while_an_invoice_is_unpaid_is_tried_on_it_at_once(
    signed_in_client, membership, stripe_emulator, stripe_client, clock
):
    customer = membership.customer
    [visa] = subscribed_with(signed_in_client, membership, stripe_emulator, "pm_card_visa")
    stripe_emulator.emulator.card_behavior_set(visa, decline_code="lost_card")
    renewal = renew(stripe_emulator, stripe_client, clock, customer)
    assert stripe_client.v1.invoices.retrieve(renewal.id).status == "open"
    assert "Pay now" in signed_in_client.get(reverse("home")).content.decode()

    mastercard = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")

    assert stripe_client.v1.invoices.retrieve(renewal.id).status == "paid"
    assert paid_by(stripe_client, renewal.id) == [mastercard]
    assert card_order(customer) == [mastercard, visa]
    assert stripe_default(stripe_client, membership) == mastercard
    assert "Pay now" not in signed_in_client.get(reverse("home")).content.decode()


def test_a_card_needing_authentication_stops_the_fallback_and_sends_the_link(
    signed_in_client, membership, stripe_emulator, stripe_client, clock
):
    customer = membership.customer
    visa, amex, mastercard = subscribed_with(
        signed_in_client, membership, stripe_emulator,
        "pm_card_visa", "pm_card_amex", "pm_card_mastercard",
    )  # fmt: skip
    stripe_emulator.emulator.card_behavior_set(visa, decline_code="expired_card")
    stripe_emulator.emulator.card_behavior_set(amex, requires_action=True)
    mail.outbox.clear()

    renewal = renew(stripe_emulator, stripe_client, clock, customer)

    # Amex needs the customer: Mastercard is not charged behind their back meanwhile.
    attempts = [(a.payment_method, a.outcome) for a in PaymentAttempt.objects.all()]
    assert attempts == [(amex, "requires_action")]
    assert stripe_client.v1.invoices.retrieve(renewal.id).status == "open"
    assert paid_by(stripe_client, renewal.id) == []
    [email] = [m for m in mail.outbox if "confirm" in m.subject]
    assert email.subject == "Please confirm your payment of €19.00"
    assert renewal.hosted_invoice_url in email.body
    assert not [m for m in mail.outbox if "failed" in m.subject]
    assert card_order(customer) == [visa, amex, mastercard]


def test_the_banner_is_one_query_for_the_billing_contacts_only_and_a_page_view_writes_nothing(
    client, membership, other_membership, settings
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.models import BillingInfo
    from tests.accounts.factories import MembershipFactory

    settings.BILLING_ENABLED = False  # the banner reads our rows only: no Stripe involved
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(membership.user)

    def page() -> tuple[str, int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("home"))
        assert response.status_code == 200
        writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
        assert writes == [], writes
        return response.content.decode(), len(queries)

    html, without = page()
    assert "failed on" not in html

    def unpaid(customer, n: int, **fields) -> InvoiceRecovery:
        billing_info = BillingInfo.objects.create(stripe_id=f"cus_{customer.pk[-6:]}{n}")
        fields = {"failed_at": datetime(2026, 5, 3, 10, tzinfo=UTC), **fields}
        return InvoiceRecovery.objects.create(
            stripe_invoice_id=f"in_{customer.pk[-6:]}{n}", billing_info=billing_info,
            customer=customer, amount=4900, currency="eur",
            hosted_invoice_url=f"https://invoice.example/{n}", **fields,
        )  # fmt: skip

    unpaid(other_membership.customer, 0)  # another account's: never shown here
    unpaid(membership.customer, 1)
    html, with_one = page()
    assert "Your payment of €49.00 failed on 3 May." in html
    assert 'href="https://invoice.example/1">Pay now</a>' in html
    assert reverse("billing:payment_methods") in html
    for n in range(2, 12):
        unpaid(membership.customer, n, failed_at=datetime(2026, 6, n, tzinfo=UTC))
    unpaid(membership.customer, 20, status=InvoiceRecovery.Status.PAID)
    html, with_many = page()
    assert "failed on 3 May." in html  # the oldest unpaid one
    assert without == with_one == with_many

    # A plain member of the account cannot pay or change cards: no banner for them.
    member = MembershipFactory(customer=membership.customer, role="member")
    client.force_login(member.user)
    assert "failed on" not in client.get(reverse("home")).content.decode()


def test_concurrent_runs_for_one_invoice_open_one_attempt_and_charge_once(
    signed_in_client, membership, stripe_emulator, stripe_client, clock
):
    """Duplicate events (or a card added while an event is processed) run the recovery at
    the same moment: the unique attempt and the one-pending rule let one run pay."""
    import threading

    from django.db import connection

    customer = membership.customer
    visa, mastercard = subscribed_with(
        signed_in_client, membership, stripe_emulator, "pm_card_visa", "pm_card_mastercard"
    )
    stripe_emulator.emulator.card_behavior_set(visa, decline_code="expired_card")
    stripe_emulator.emulator.card_behavior_set(mastercard, decline_code="insufficient_funds")
    renewal = renew(stripe_emulator, stripe_client, clock, customer)
    assert [a.outcome for a in PaymentAttempt.objects.all()] == ["declined"]
    stripe_emulator.emulator.card_behavior_set(mastercard)  # the customer topped it up
    # Mastercard is not a new card: only a new round (Stripe's next attempt) or these
    # concurrent "tried at once" runs with a card of their own would try it; use a new one.
    amex = stripe_client.v1.payment_methods.attach(
        "pm_card_amex", {"customer": clock_customer(membership)}
    ).id
    PaymentMethod.objects.create(
        billing_info=customer.billing.billing_info, stripe_id=amex, order=2
    )

    barrier = threading.Barrier(4)
    errors = []

    def run():
        try:
            barrier.wait()
            recovery.card_try_on_open_invoices(payment_method_id=amex)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stripe_emulator.deliver()

    assert errors == []
    assert paid_by(stripe_client, renewal.id) == [amex]
    tried = [(a.payment_method, a.outcome) for a in PaymentAttempt.objects.order_by("id")]
    assert tried == [(mastercard, "declined"), (amex, "paid")]
    assert Entry.objects.filter(kind="payment_attempted", data__payment_method=amex).count() == 1
    assert card_order(customer)[0] == amex


def test_each_of_stripes_retries_that_fails_sends_one_email_with_the_pay_link(
    signed_in_client, membership, stripe_emulator, stripe_client, clock
):
    customer = membership.customer
    [visa] = subscribed_with(signed_in_client, membership, stripe_emulator, "pm_card_visa")
    stripe_emulator.emulator.card_behavior_set(visa, decline_code="insufficient_funds")
    mail.outbox.clear()
    renewal = renew(stripe_emulator, stripe_client, clock, customer)
    first = InvoiceRecovery.objects.get(stripe_invoice_id=renewal.id).failed_at
    # Stripe's Smart Retries try the same card again (the decline may pass later); each
    # retry's events reach the portal before the next retry, days later.
    for day in range(1, 11):
        stripe_emulator.advance_clock(clock.id, int(first.timestamp()) + day * DAY)

    renewal = stripe_client.v1.invoices.retrieve(renewal.id)
    assert renewal.status == "open" and renewal.attempt_count >= 2
    failed = [m for m in mail.outbox if m.subject == "Your payment of €19.00 failed"]
    assert len(failed) == renewal.attempt_count
    assert all(renewal.hosted_invoice_url in message.body for message in failed)
    assert PaymentAttempt.objects.count() == 0  # one card: nothing else to try
    saved = InvoiceRecovery.objects.get(stripe_invoice_id=renewal.id)
    assert (saved.round, saved.failed_at) == (renewal.attempt_count, first)
    rounds = Entry.objects.filter(customer=customer, kind="payment_failed").count()
    assert rounds == renewal.attempt_count
