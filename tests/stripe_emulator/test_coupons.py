"""Coupons and the discounts they make on subscriptions: what Stripe checks when one is
created or redeemed, the discount on the subscription, what it takes off the renewal
invoice (and the preview), which lines it applies to, and when it stops."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
import time_machine

from .test_invoicing import DAY, START, World, _error, _item, _latest, _subscribe, _world


def _wall_clock_at(timestamp: int):
    """The emulator's wall clock (not a test clock's) at `timestamp`: the subscriptions
    here live on test clocks from START, and a coupon's redeem_by is checked against wall
    time when it is created, so the test does not depend on today's date."""
    return time_machine.travel(datetime.fromtimestamp(timestamp, UTC), tick=False)


@pytest.fixture
def world() -> World:
    return _world()


def _renew(world: World, end: int) -> Any:
    """The renewal draft of the period ending at ``end``, finalized an hour later."""
    world.advance(end + 60)
    world.advance(end + 2 * 3600)
    return world


def test_a_coupon_has_stripes_shape_and_is_listed_retrieved_and_deleted(world: World) -> None:
    api = world.api
    coupon = api.coupons.create(
        {"id": "SPRING20", "percent_off": 20, "duration": "repeating", "duration_in_months": 3}
    )
    assert (coupon.id, coupon.object, coupon.percent_off, coupon.amount_off) == (
        "SPRING20", "coupon", 20, None,
    )  # fmt: skip
    assert (coupon.duration, coupon.duration_in_months, coupon.valid) == ("repeating", 3, True)
    assert coupon.times_redeemed == 0 and coupon.currency is None and coupon.name is None
    assert api.coupons.retrieve("SPRING20").id == "SPRING20"
    assert [c.id for c in api.coupons.list().data] == ["SPRING20"]
    gone = api.coupons.delete("SPRING20")
    assert (gone.id, gone.object, gone.deleted) == ("SPRING20", "coupon", True)
    assert _error(lambda: api.coupons.retrieve("SPRING20")).http_status == 404
    assert api.coupons.list().data == []


def test_stripe_refuses_a_coupon_it_could_not_apply(world: World) -> None:
    api = world.api
    refused = {
        "percent_off": _error(lambda: api.coupons.create({"duration": "once"})),
        "amount_off": _error(lambda: api.coupons.create({"percent_off": 5, "amount_off": 5})),
        "currency": _error(lambda: api.coupons.create({"amount_off": 500})),
        "duration_in_months": _error(
            lambda: api.coupons.create({"percent_off": 5, "duration": "repeating"})
        ),
        "redeem_by": _error(lambda: api.coupons.create({"percent_off": 5, "redeem_by": 1})),
    }
    for param, error in refused.items():
        assert (error.http_status, error.param) == (400, param), (param, error)
    api.coupons.create({"id": "ONCE", "percent_off": 5})
    twice = _error(lambda: api.coupons.create({"id": "ONCE", "percent_off": 5}))
    assert (twice.http_status, twice.code) == (400, "resource_already_exists")
    assert [c.id for c in api.coupons.list().data] == ["ONCE"]


def test_a_percentage_off_applies_to_the_renewal_and_its_preview(world: World) -> None:
    api = world.api
    subscription, end = _subscribe(world, amount=1000)
    _item(world, 555, subscription=subscription.id)  # usage: discountable
    api.coupons.create({"id": "SPRING20", "percent_off": 20, "duration": "forever"})
    updated = api.subscriptions.update(
        subscription.id, {"discounts": [{"coupon": "SPRING20"}], "expand": ["discounts"]}
    )
    discount = updated.discounts[0]
    assert discount.object == "discount" and discount.id.startswith("di_")
    assert (discount.source.coupon, discount.source.type) == ("SPRING20", "coupon")
    assert (discount.subscription, discount.customer) == (subscription.id, world.customer.id)
    assert discount.end is None and discount.start == START
    assert api.subscriptions.retrieve(subscription.id).discounts == [discount.id]
    assert api.coupons.retrieve("SPRING20").times_redeemed == 1

    preview = api.invoices.create_preview({"subscription": subscription.id})
    assert preview.subtotal == 1555
    assert preview.total_discount_amounts[0].amount == 311  # 20 % of 15.55, half up
    assert (preview.total, preview.total_excluding_tax, preview.amount_due) == (1244, 1244, 1244)
    assert preview.discounts == [discount.id]

    _renew(world, end)
    renewal = _latest(world, subscription)
    assert renewal.billing_reason == "subscription_cycle"
    assert (renewal.subtotal, renewal.total, renewal.amount_paid) == (1555, 1244, 1244)
    assert [(d.amount, d.discount) for d in renewal.total_discount_amounts] == [(311, discount.id)]
    shares = [line.discount_amounts[0].amount for line in renewal.lines.data]
    assert sum(shares) == 311 and all(line.discountable for line in renewal.lines.data)
    assert [line.amount for line in renewal.lines.data] == [1000, 555]  # amounts are gross


def test_an_amount_off_never_takes_more_than_the_invoice_and_needs_its_currency(
    world: World,
) -> None:
    api = world.api
    subscription, _ = _subscribe(world, amount=1000)
    api.coupons.create({"id": "EUR5", "amount_off": 500, "currency": "eur"})
    mismatch = _error(
        lambda: api.subscriptions.update(subscription.id, {"discounts": [{"coupon": "EUR5"}]})
    )
    assert (mismatch.http_status, mismatch.param) == (400, "discounts[0][coupon]")
    assert api.subscriptions.retrieve(subscription.id).discounts == []
    assert api.coupons.retrieve("EUR5").times_redeemed == 0

    api.coupons.create({"id": "BIG", "amount_off": 5000, "currency": "usd", "duration": "forever"})
    api.subscriptions.update(subscription.id, {"discounts": [{"coupon": "BIG"}]})
    preview = api.invoices.create_preview({"subscription": subscription.id})
    assert (preview.total_discount_amounts[0].amount, preview.total) == (1000, 0)


def test_prorations_are_not_discounted(world: World) -> None:
    api = world.api
    subscription, _ = _subscribe(world, amount=1000)
    api.coupons.create({"id": "HALF", "percent_off": 50, "duration": "forever"})
    api.subscriptions.update(subscription.id, {"discounts": [{"coupon": "HALF"}]})
    item = _item(world, 400, subscription=subscription.id)
    proration = world.api.invoice_items.create(
        {"customer": world.customer.id, "amount": 300, "currency": "usd",
         "subscription": subscription.id, "discountable": False}
    )  # fmt: skip
    assert item.discountable and not proration.discountable
    preview = api.invoices.create_preview({"subscription": subscription.id})
    assert preview.subtotal == 1700
    assert preview.total_discount_amounts[0].amount == 700  # half of 10.00 + 4.00
    assert preview.total == 1000


def test_a_repeating_coupon_ends_after_its_months_and_a_once_coupon_after_one_invoice(
    world: World,
) -> None:
    api = world.api
    subscription, end = _subscribe(world, amount=1000)
    api.coupons.create({"id": "THREE", "percent_off": 10, "duration": "repeating",
                        "duration_in_months": 3})  # fmt: skip
    applied = api.subscriptions.update(subscription.id, {"discounts": [{"coupon": "THREE"}]})
    discount = api.subscriptions.retrieve(subscription.id, {"expand": ["discounts"]}).discounts[0]
    assert discount.end > START + 89 * DAY
    totals = []
    for _ in range(3):
        _renew(world, end)
        renewal = _latest(world, applied)
        totals.append(renewal.total)
        end = api.subscriptions.retrieve(subscription.id)["items"].data[0].current_period_end
    assert totals == [900, 900, 1000]  # 3 months from START: the renewals at +1 and +2 months
    assert api.subscriptions.retrieve(subscription.id).discounts == []
    # It left the subscription at its end (the clock passed it), as the update says.
    updates = [
        event["data"] for event in world.endpoint.events
        if event["type"] == "customer.subscription.updated"
        and event["data"]["object"]["discounts"] == []
        and event["data"].get("previous_attributes", {}).get("discounts") == [discount.id]
    ]  # fmt: skip
    assert len(updates) == 1

    api.coupons.create({"id": "FIRST", "percent_off": 50})  # duration once, Stripe's default
    api.subscriptions.update(subscription.id, {"discounts": [{"coupon": "FIRST"}]})
    _renew(world, end)
    assert _latest(world, applied).total == 500
    assert api.subscriptions.retrieve(subscription.id).discounts == []
    end = api.subscriptions.retrieve(subscription.id)["items"].data[0].current_period_end
    _renew(world, end)
    assert _latest(world, applied).total == 1000


def test_redeeming_refusals_change_nothing(world: World) -> None:
    api = world.api
    subscription, _ = _subscribe(world)
    unknown = _error(
        lambda: api.subscriptions.update(subscription.id, {"discounts": [{"coupon": "NOPE"}]})
    )
    assert (unknown.http_status, unknown.code) == (404, "resource_missing")
    assert unknown.param == "discounts[0][coupon]"
    assert "No such coupon: 'NOPE'" in unknown.user_message

    api.coupons.create({"id": "ONE", "percent_off": 5, "max_redemptions": 1})
    api.subscriptions.update(subscription.id, {"discounts": [{"coupon": "ONE"}]})
    assert api.coupons.retrieve("ONE").valid is False
    other, _ = _subscribe(world, amount=2000)
    used_up = _error(lambda: api.subscriptions.update(other.id, {"discounts": [{"coupon": "ONE"}]}))
    assert (used_up.http_status, used_up.code) == (400, "coupon_expired")

    with _wall_clock_at(START):  # Stripe checks redeem_by against the time of creation
        api.coupons.create({"id": "SOON", "percent_off": 5, "redeem_by": START + DAY * 400})
    world.advance(START + DAY * 20)  # the subscription's clock; the coupon is still valid
    api.subscriptions.update(other.id, {"discounts": [{"coupon": "SOON"}]})
    assert api.subscriptions.retrieve(other.id).discounts != []
    api.subscriptions.update(other.id, {"discounts": ""})  # cleared
    assert api.subscriptions.retrieve(other.id).discounts == []


def test_a_coupon_past_redeem_by_is_refused_on_the_subscriptions_clock() -> None:
    world = _world()
    api = world.api
    subscription, _ = _subscribe(world)
    with _wall_clock_at(START):  # Stripe checks redeem_by against the time of creation
        api.coupons.create({"id": "LATE", "percent_off": 5, "redeem_by": START + 2 * DAY})
    world.advance(START + 3 * DAY)
    expired = _error(
        lambda: api.subscriptions.update(subscription.id, {"discounts": [{"coupon": "LATE"}]})
    )
    assert (expired.http_status, expired.code) == (400, "coupon_expired")
    assert api.subscriptions.retrieve(subscription.id).discounts == []
    assert api.coupons.retrieve("LATE").times_redeemed == 0


def test_a_coupon_for_some_products_discounts_only_their_lines(world: World) -> None:
    api = world.api
    subscription, _ = _subscribe(world, amount=1000)
    product = api.prices.retrieve(subscription["items"].data[0].price.id).product
    api.coupons.create({"id": "PLANONLY", "percent_off": 50, "duration": "forever",
                        "applies_to": {"products": [product]}})  # fmt: skip
    coupon = api.coupons.retrieve("PLANONLY", {"expand": ["applies_to"]})
    assert coupon.applies_to.products == [product]
    api.subscriptions.update(subscription.id, {"discounts": [{"coupon": "PLANONLY"}]})
    _item(world, 400, subscription=subscription.id)
    preview = api.invoices.create_preview({"subscription": subscription.id})
    assert (preview.subtotal, preview.total) == (1400, 900)


def test_a_deleted_coupon_keeps_its_discounts(world: World) -> None:
    api = world.api
    subscription, end = _subscribe(world, amount=1000)
    api.coupons.create({"id": "GONE", "percent_off": 30, "duration": "forever"})
    api.subscriptions.update(subscription.id, {"discounts": [{"coupon": "GONE"}]})
    api.coupons.delete("GONE")
    price = subscription["items"].data[0].price.id
    refused = _error(lambda: api.subscriptions.create(
        {"customer": world.customer.id, "items": [{"price": price}],
         "discounts": [{"coupon": "GONE"}]}
    ))  # fmt: skip
    assert refused.http_status == 404
    _renew(world, end)
    assert _latest(world, subscription).total == 700


def test_deleting_a_customer_cancels_its_subscriptions_and_answers_the_stub(world: World) -> None:
    api = world.api
    subscription, _ = _subscribe(world)
    gone = api.customers.delete(world.customer.id)
    assert gone.to_dict() == {"id": world.customer.id, "object": "customer", "deleted": True}
    again = api.customers.retrieve(world.customer.id)
    assert again.to_dict() == {"id": world.customer.id, "object": "customer", "deleted": True}
    assert api.subscriptions.retrieve(subscription.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        api.customers.update(world.customer.id, {"name": "x"})
