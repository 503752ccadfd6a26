"""Applying a coupon from the support page, through the emulator: one audited POST, the
discount on Stripe's subscription and on our current invoice (computed as Stripe computes
it), renewals finalized without drift while it lasts and after it ends, and Stripe's
refusals leaving nothing behind."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djstripe.models import Discount as MirroredDiscount

from audit.models import Entry
from billing import discounts
from billing.invoice_sync import invoice_sync_to_stripe
from billing.models import Invoice, InvoiceLine, StripeEvent, SubscriptionDiscount
from licensing.models import CustomerPlan
from tests.billing.test_invoice_sync import on_pro, renew, use  # noqa: F401
from tests.billing.test_plans import DAY, catalog, clock  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def act(client, customer, **data):
    return client.post(reverse("support:action", args=[customer.customer_id, "coupon_apply"]), data)


def discount_line(invoice: Invoice) -> InvoiceLine | None:
    return invoice.lines.filter(kind=InvoiceLine.Kind.DISCOUNT, amount__lt=0).first()


def settled(stripe_client, invoice: Invoice):
    """Our invoice after its renewal, and Stripe's."""
    invoice = Invoice.objects.get(pk=invoice.pk)
    return invoice, stripe_client.v1.invoices.retrieve(invoice.stripe_invoice_id)


def test_a_percent_coupon_applied_on_the_support_page_is_taken_off_both_sides(
    on_pro,  # noqa: F811
    membership,
    support_client,
    signed_in_client,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    stripe_client.v1.coupons.create(
        {"id": "SPRING20", "percent_off": 20, "duration": "repeating", "duration_in_months": 3}
    )
    response = act(support_client, customer, coupon="SPRING20", reason="spring campaign")
    assert response.status_code == 302
    [entry] = Entry.objects.filter(customer=customer, actor=support_client.user)
    assert entry.kind == "support_coupon_apply" and entry.data["outcome"] == "succeeded"
    assert entry.sentence == (
        "Coupon SPRING20 applied (20 % off for 3 months) by support@example.com: spring campaign"
    )
    assert entry.data["changed"] == ["discount"]
    assert entry.data["before"]["discount"] is None
    assert entry.data["after"]["discount"][0] == "SPRING20"
    assert len(entry.data["stripe_request_ids"]) == 2  # the coupon read, the subscription update
    subscription = stripe_client.v1.subscriptions.retrieve(
        on_pro.subscription_id, {"expand": ["discounts"]}
    )
    [discount] = subscription.discounts
    recorded = SubscriptionDiscount.objects.get(customer=customer)
    assert (recorded.stripe_discount_id, recorded.percent_off) == (discount.id, Decimal("20"))
    assert recorded.ends_at == datetime.fromtimestamp(discount.end, UTC)

    line = discount_line(on_pro)
    assert (line.description, line.amount) == ("Discount: SPRING20, 20 % off for 3 months", -980)
    overview = signed_in_client.get(reverse("billing:overview")).content.decode()
    assert "Discount: SPRING20, 20 % off for 3 months" in overview
    detail = signed_in_client.get(reverse("billing:invoice_detail", args=[on_pro.pk]))
    assert "Discount: SPRING20, 20 % off for 3 months" in detail.content.decode()
    page = support_client.get(response.url).content.decode()
    assert "SPRING20: 20 % off for 3 months" in page and "-€9.80" in page

    use(customer, 150_000, "a")  # 10.00 of usage: discounted too
    invoice_sync_to_stripe(invoice_id=on_pro.pk)
    renew(stripe_emulator, clock, customer)
    invoice, stripe_invoice = settled(stripe_client, on_pro)
    assert invoice.status == Invoice.Status.FINALIZED and not invoice.has_drift
    assert stripe_invoice.status == "paid"
    assert stripe_invoice.amount_due == invoice.total == (4900 + 1000) * 80 // 100
    assert stripe_invoice.total_discount_amounts[0].discount == discount.id
    assert not Entry.objects.filter(customer=customer, kind="invoice_drift").exists()
    # Every event of the way (the subscription's discounts, invoices carrying them) was
    # processed, dj-stripe's mirror of the invoice's discounts included.
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert MirroredDiscount.objects.filter(id=discount.id).exists()
    # The next cycle is within the three months: its invoice is discounted too.
    following = Invoice.objects.get(customer=customer, status=Invoice.Status.OPEN)
    assert discount_line(following).amount == -980


def test_an_amount_off_coupon_once_applies_to_one_renewal_on_both_sides(
    on_pro,  # noqa: F811
    membership,
    support_client,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    stripe_client.v1.coupons.create(
        {"id": "SORRY5", "amount_off": 500, "currency": "eur", "name": "Apology"}
    )
    assert act(support_client, customer, coupon="SORRY5", reason="outage").status_code == 302
    assert discount_line(on_pro).description == "Discount: SORRY5, €5.00 off once"
    use(customer, 150_000, "a")
    invoice_sync_to_stripe(invoice_id=on_pro.pk)
    period_end = renew(stripe_emulator, clock, customer)
    invoice, stripe_invoice = settled(stripe_client, on_pro)
    assert invoice.status == Invoice.Status.FINALIZED and not invoice.has_drift
    assert stripe_invoice.amount_due == invoice.total == 4900 + 1000 - 500

    # Used up: the next renewal is the full price at Stripe and here.
    following = Invoice.objects.get(customer=customer, status=Invoice.Status.OPEN)
    assert discount_line(following) is None
    assert stripe_client.v1.subscriptions.retrieve(on_pro.subscription_id).discounts == []
    paid = CustomerPlan.objects.get(customer=customer)
    stripe_emulator.advance_clock(clock.id, int(paid.current_period_end.timestamp()) + DAY)
    assert int(paid.current_period_end.timestamp()) > period_end
    invoice, stripe_invoice = settled(stripe_client, following)
    assert invoice.status == Invoice.Status.FINALIZED and not invoice.has_drift
    assert stripe_invoice.amount_due == invoice.total == 4900


def test_a_repeating_coupon_stops_after_its_months_on_both_sides(
    on_pro,  # noqa: F811
    membership,
    support_client,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    customer = membership.customer
    stripe_client.v1.coupons.create(
        {"id": "MONTH10", "percent_off": 10, "duration": "repeating", "duration_in_months": 1}
    )
    # Redeemed five days into the cycle: the month covers this renewal, not the next one.
    stripe_emulator.advance_clock(clock.id, int(on_pro.period_start.timestamp()) + 5 * DAY)
    assert act(support_client, customer, coupon="MONTH10", reason="goodwill").status_code == 302
    recorded = SubscriptionDiscount.objects.get(customer=customer)
    assert recorded.starts_at == on_pro.period_start + timedelta(days=5)
    renew(stripe_emulator, clock, customer)
    invoice, stripe_invoice = settled(stripe_client, on_pro)
    assert stripe_invoice.amount_due == invoice.total == 4410 and not invoice.has_drift
    following = Invoice.objects.get(customer=customer, status=Invoice.Status.OPEN)
    assert discount_line(following) is None  # the month is over before the next renewal
    paid = CustomerPlan.objects.get(customer=customer)
    stripe_emulator.advance_clock(clock.id, int(paid.current_period_end.timestamp()) + DAY)
    invoice, stripe_invoice = settled(stripe_client, following)
    assert invoice.status == Invoice.Status.FINALIZED and not invoice.has_drift
    assert stripe_invoice.amount_due == invoice.total == 4900


def test_an_unknown_coupon_is_a_form_error_a_failed_entry_and_no_change(
    on_pro,  # noqa: F811
    membership,
    support_client,
    stripe_client,
):
    customer = membership.customer
    response = act(support_client, customer, coupon="NOSUCH", reason="promised one")
    assert response.status_code == 400
    form = response.context["forms"]["coupon_apply"]
    assert "Stripe has no coupon with the id 'NOSUCH'" in form.errors["coupon"][0]
    assert "Stripe has no coupon with the id" in response.content.decode()
    [entry] = Entry.objects.filter(customer=customer, actor=support_client.user)
    assert entry.data["outcome"] == "failed" and entry.data["changed"] == []
    assert "Apply a coupon failed" in entry.sentence
    assert not SubscriptionDiscount.objects.exists() and discount_line(on_pro) is None
    subscription = stripe_client.v1.subscriptions.retrieve(on_pro.subscription_id)
    assert subscription.discounts == []


def test_a_coupon_stripe_refuses_changes_nothing_on_either_side(
    on_pro,  # noqa: F811
    membership,
    support_client,
    stripe_client,
):
    customer = membership.customer
    stripe_client.v1.coupons.create({"id": "USD5", "amount_off": 500, "currency": "usd"})
    response = act(support_client, customer, coupon="USD5", reason="wrong currency")
    assert response.status_code == 400
    assert "Stripe refused coupon USD5" in response.content.decode()
    [entry] = Entry.objects.filter(customer=customer, actor=support_client.user)
    assert entry.data["outcome"] == "failed"
    assert not SubscriptionDiscount.objects.exists() and discount_line(on_pro) is None
    assert stripe_client.v1.coupons.retrieve("USD5").times_redeemed == 0
    assert stripe_client.v1.subscriptions.retrieve(on_pro.subscription_id).discounts == []


def test_without_a_reason_or_a_coupon_nothing_is_sent(on_pro, membership, support_client):  # noqa: F811
    customer = membership.customer
    assert act(support_client, customer, coupon="SPRING20").status_code == 400
    assert act(support_client, customer, reason="why not").status_code == 400
    assert not Entry.objects.filter(actor=support_client.user).exists()


def test_the_support_page_costs_the_same_queries_with_many_past_discounts(
    on_pro,  # noqa: F811
    membership,
    support_client,
    django_assert_num_queries,
):
    customer = membership.customer
    url = reverse("support:customer", args=[customer.customer_id])

    def add(n: int) -> None:
        for index in range(n):
            SubscriptionDiscount.objects.create(
                customer=customer, subscription_id=on_pro.subscription_id,
                stripe_discount_id=f"di_{index}_{n}", coupon_id=f"C{index}", duration="forever",
                percent_off=Decimal(5), starts_at=on_pro.period_start + timedelta(seconds=index),
                removed_at=on_pro.period_start + timedelta(seconds=index + 1),
            )  # fmt: skip

    add(1)
    support_client.get(url)
    with CaptureQueriesContext(connection) as one:
        assert support_client.get(url).status_code == 200
    add(20)
    with django_assert_num_queries(len(one.captured_queries)):
        assert support_client.get(url).status_code == 200


# The rule for which of our invoices a discount is on (dense: a unit test, no Stripe).


def _invoice(start: datetime, end: datetime) -> Invoice:
    return Invoice(customer_id="cust_x", subscription_id="sub_1", period_start=start,
                   period_end=end)  # fmt: skip


def _discount(duration: str, starts: datetime, **extra) -> SubscriptionDiscount:
    extra.setdefault("percent_off", Decimal(10))
    return SubscriptionDiscount(subscription_id="sub_1", duration=duration, starts_at=starts,
                                **extra)  # fmt: skip


def test_which_cycles_a_discount_is_on():
    t0 = datetime(2031, 1, 15, tzinfo=UTC)
    months = [datetime(2031, m, 15, tzinfo=UTC) for m in range(1, 7)]
    cycles = [_invoice(a, b) for a, b in pairwise(months)]
    mid = t0 + timedelta(days=10)  # redeemed within the first cycle

    def on(discount):
        return [discounts.discount_applies(discount, cycle) for cycle in cycles]

    assert on(_discount("once", mid)) == [True, False, False, False, False]
    assert on(_discount("forever", mid)) == [True] * 5
    repeating = _discount("repeating", mid, ends_at=mid.replace(month=3))  # 2 months
    assert on(repeating) == [True, True, False, False, False]
    replaced = _discount("forever", mid, removed_at=months[2] + timedelta(days=1))
    assert on(replaced) == [True, True, False, False, False]
    other = _discount("forever", mid)
    other.subscription_id = "sub_2"
    assert on(other) == [False] * 5
    # Half up to the minor unit, never more than what is there.
    assert discounts.discount_amount(_discount("once", mid, percent_off=Decimal("12.5")),
                                     base=1004) == 126  # fmt: skip
    fixed = SubscriptionDiscount(amount_off=700, currency="eur", duration="once")
    assert discounts.discount_amount(fixed, base=500) == 500


def test_with_billing_disabled_the_page_shows_the_coupon_and_the_action_is_refused(
    membership, support_client, settings
):
    assert not settings.BILLING_ENABLED
    customer = membership.customer
    SubscriptionDiscount.objects.create(
        customer=customer, subscription_id="sub_1", stripe_discount_id="di_1",
        coupon_id="SPRING20", duration="repeating", duration_in_months=3,
        percent_off=Decimal(20), starts_at=datetime(2031, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    page = support_client.get(reverse("support:customer", args=[customer.customer_id]))
    assert "SPRING20: 20 % off for 3 months" in page.content.decode()
    response = act(support_client, customer, coupon="SPRING20", reason="campaign")
    assert response.status_code == 403
    assert "Billing is not enabled" in response.content.decode()
    assert not Entry.objects.filter(actor=support_client.user).exists()


def test_a_coupon_applied_and_removed_at_stripe_is_followed_by_our_ledger(
    on_pro,  # noqa: F811
    membership,
    stripe_emulator,
    stripe_client,
    clock,  # noqa: F811
):
    """In the Dashboard, say: the subscription's sync records it, and its removal."""
    customer = membership.customer
    stripe_client.v1.coupons.create({"id": "DASH15", "percent_off": 15, "duration": "forever"})
    stripe_client.v1.subscriptions.update(
        on_pro.subscription_id, {"discounts": [{"coupon": "DASH15"}]}
    )
    stripe_emulator.deliver()
    recorded = SubscriptionDiscount.objects.get(customer=customer)
    assert (recorded.coupon_id, recorded.duration, recorded.removed_at) == (
        "DASH15", "forever", None,
    )  # fmt: skip
    assert discount_line(on_pro).description == "Discount: DASH15, 15 % off forever"
    stripe_client.v1.subscriptions.update(on_pro.subscription_id, {"discounts": ""})
    stripe_emulator.deliver()
    assert SubscriptionDiscount.objects.get(customer=customer).removed_at is not None
    assert discount_line(on_pro) is None
    renew(stripe_emulator, clock, customer)
    invoice, stripe_invoice = settled(stripe_client, on_pro)
    assert invoice.status == Invoice.Status.FINALIZED and not invoice.has_drift
    assert stripe_invoice.amount_due == invoice.total == 4900
