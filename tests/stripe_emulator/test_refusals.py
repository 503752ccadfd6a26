"""The emulator refuses what Stripe refuses: one table per family of rule, each row a
request Stripe answers 400 (or 404) with its error type, code, ``param`` and message."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe
import time_machine

from stripe_emulator import Emulator, InProcessHTTPClient, emulator_in_process
from stripe_emulator.resources import ROUTES

from .conftest import API_KEY, advance_clock

AUTH = {"Authorization": f"Bearer {API_KEY}"}
DAY = 86400
START = 1_800_000_000


def call(
    emulator: Emulator, method: str, path: str, encoded: str = "", headers: dict[str, str] = AUTH
) -> tuple[int, dict[str, Any]]:
    if method == "POST":
        response = emulator.handle(method, path, headers, encoded.encode())
    else:
        response = emulator.handle(method, f"{path}?{encoded}" if encoded else path, headers)
    return response.status, response.json()


class World:
    """Two customers with cards, a detached card, prices of several kinds, subscriptions,
    invoices and test clocks: what every refusal table needs."""

    def __init__(self) -> None:
        self.emulator = emulator_in_process()
        v1 = self.v1 = stripe.StripeClient(
            API_KEY, http_client=InProcessHTTPClient(self.emulator)
        ).v1
        ids: dict[str, str] = {}
        product = v1.products.create({"name": "Plan"})
        ids["product"] = product.id

        def price(amount: int, currency: str = "usd", **recurring: Any) -> str:
            params: dict[str, Any] = {
                "product": product.id,
                "currency": currency,
                "unit_amount": amount,
            }
            if recurring:
                params["recurring"] = recurring
            return v1.prices.create(params).id

        ids["monthly"] = price(1000, interval="month")
        ids["monthly_addon"] = price(200, interval="month")
        ids["yearly"] = price(10000, interval="year")
        ids["monthly_eur"] = price(900, "eur", interval="month")
        ids["one_time"] = price(500)
        ids["meter"] = v1.billing.meters.create(
            {
                "display_name": "API calls",
                "event_name": "api_calls",
                "default_aggregation": {"formula": "sum"},
            }
        ).id
        for name in ("customer", "other"):
            customer = v1.customers.create({"email": f"{name}@example.com"})
            ids[name] = customer.id
            card = v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
            ids[f"{name}_card"] = card.id
            v1.customers.update(
                customer.id, {"invoice_settings": {"default_payment_method": card.id}}
            )
        spare = v1.payment_methods.attach("pm_card_mastercard", {"customer": ids["customer"]})
        ids["detached"] = v1.payment_methods.detach(spare.id).id
        for name in ("customer", "other"):
            ids[f"{name}_sub"] = v1.subscriptions.create(
                {"customer": ids[name], "items": [{"price": ids["monthly"]}]}
            ).id
        subscription = v1.subscriptions.retrieve(ids["customer_sub"])
        ids["customer_sub_item"] = subscription["items"].data[0].id
        ids["period_start"] = str(subscription["items"].data[0].current_period_start)
        ids["period_end"] = str(subscription["items"].data[0].current_period_end)
        ids["before_period"] = str(int(ids["period_start"]) - DAY)
        ids["after_period"] = str(int(ids["period_end"]) + DAY)
        canceled = v1.subscriptions.create(
            {"customer": ids["customer"], "items": [{"price": ids["yearly"]}]}
        )
        ids["canceled_sub"] = v1.subscriptions.cancel(canceled.id).id
        for name in ("customer", "other"):
            ids[f"{name}_draft"] = v1.invoices.create({"customer": ids[name]}).id
        v1.invoice_items.create(
            {
                "customer": ids["customer"],
                "amount": 700,
                "currency": "usd",
                "invoice": ids["customer_draft"],
            }
        )
        billable = v1.invoices.create({"customer": ids["customer"]})
        v1.invoice_items.create(
            {"customer": ids["customer"], "amount": 300, "currency": "usd", "invoice": billable.id}
        )
        ids["open_invoice"] = v1.invoices.finalize_invoice(billable.id).id
        for name in ("paid_invoice", "void_invoice", "uncollectible_paid"):
            made = v1.invoices.create({"customer": ids["customer"]})
            v1.invoice_items.create(
                {"customer": ids["customer"], "amount": 400, "currency": "usd", "invoice": made.id}
            )
            ids[name] = v1.invoices.finalize_invoice(made.id).id
        v1.invoices.pay(ids["paid_invoice"])
        v1.invoices.void_invoice(ids["void_invoice"])
        v1.invoices.mark_uncollectible(ids["uncollectible_paid"])
        v1.invoices.pay(ids["uncollectible_paid"])
        for name, with_subscription in (("clock", True), ("empty_clock", False)):
            clock = v1.test_helpers.test_clocks.create({"frozen_time": START})
            ids[name] = clock.id
            if with_subscription:
                on_clock = v1.customers.create({"test_clock": clock.id})
                v1.subscriptions.create(
                    {
                        "customer": on_clock.id,
                        "items": [{"price": ids["monthly"]}],
                        "trial_period_days": 30,
                    }
                )
        self.ids = ids

    def call(self, method: str, path: str, encoded: str = "") -> tuple[int, dict[str, Any]]:
        return call(self.emulator, method, path.format(**self.ids), encoded.format(**self.ids))


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture(scope="module")
def unchanged_world() -> World:
    """Shared by the tables: each refused request is shown to change nothing."""
    return World()


def assert_refused(
    world: World,
    request: tuple[str, str, str],
    expected: tuple[int, str, str | None, str | None, str],
) -> None:
    """The request is answered with Stripe's error, and leaves the emulator as it was."""
    before = {obj["id"]: dict(obj) for obj in world.emulator.store.all()}
    status, body = world.call(*request)
    want_status, want_type, want_code, want_param, want_message = expected
    error = body.get("error", {})
    assert status == want_status, body
    assert error["type"] == want_type
    assert error.get("code") == want_code
    assert error.get("param") == (want_param.format(**world.ids) if want_param else None)
    assert error["message"].startswith(want_message.format(**world.ids)), error["message"]
    after = {obj["id"]: dict(obj) for obj in world.emulator.store.all()}
    assert after == before


def row(label: str, method: str, path: str, encoded: str, *expected: Any) -> Any:
    status = 404 if expected[0] == "resource_missing" else 400
    return pytest.param(
        (method, path, encoded), (status, "invalid_request_error", *expected), id=label
    )


SPENT = "The provided PaymentMethod was previously used with a PaymentIntent without Customer"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        row(
            "attach a detached card again",
            "POST",
            "/v1/payment_methods/{detached}/attach",
            "customer={customer}",
            None,
            "payment_method",
            SPENT,
        ),
        row(
            "attach a detached card to another customer",
            "POST",
            "/v1/payment_methods/{detached}/attach",
            "customer={other}",
            None,
            "payment_method",
            SPENT,
        ),
        row(
            "pay with a detached card",
            "POST",
            "/v1/invoices/{open_invoice}/pay",
            "payment_method={detached}",
            None,
            "payment_method",
            SPENT,
        ),
        row(
            "pay with another customer's card",
            "POST",
            "/v1/invoices/{open_invoice}/pay",
            "payment_method={other_card}",
            None,
            "payment_method",
            "The PaymentMethod provided ({other_card}) does not belong to the Customer "
            "({customer})",
        ),
        row(
            "a detached card as a subscription's default",
            "POST",
            "/v1/subscriptions/{customer_sub}",
            "default_payment_method={detached}",
            None,
            "default_payment_method",
            "The customer does not have a payment method with the ID {detached}.",
        ),
    ],
)
def test_payment_methods(unchanged_world: World, request_: Any, expected: Any) -> None:
    assert_refused(unchanged_world, request_, expected)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        row(
            "pay a paid invoice",
            "POST",
            "/v1/invoices/{paid_invoice}/pay",
            "",
            None,
            None,
            "Invoice is already paid",
        ),
        row(
            "pay a paid invoice with another card",
            "POST",
            "/v1/invoices/{paid_invoice}/pay",
            "payment_method=pm_card_mastercard",
            None,
            None,
            "Invoice is already paid",
        ),
        row(
            "pay a paid invoice out of band",
            "POST",
            "/v1/invoices/{paid_invoice}/pay",
            "paid_out_of_band=true",
            None,
            None,
            "Invoice is already paid",
        ),
        row(
            "pay an uncollectible invoice paid since",
            "POST",
            "/v1/invoices/{uncollectible_paid}/pay",
            "",
            None,
            None,
            "Invoice is already paid",
        ),
        row(
            "pay a void invoice",
            "POST",
            "/v1/invoices/{void_invoice}/pay",
            "",
            None,
            None,
            "Voided invoices cannot be paid.",
        ),
        row(
            "mark a paid invoice uncollectible",
            "POST",
            "/v1/invoices/{paid_invoice}/mark_uncollectible",
            "",
            None,
            "invoice",
            "You can only mark open invoices as uncollectible",
        ),
        row(
            "void a paid invoice",
            "POST",
            "/v1/invoices/{paid_invoice}/void",
            "",
            None,
            None,
            "You can only void open or uncollectible invoices",
        ),
    ],
)
def test_paying_what_cannot_be_paid(unchanged_world: World, request_: Any, expected: Any) -> None:
    assert_refused(unchanged_world, request_, expected)


METERED = "product={product}&currency=usd&unit_amount=2&recurring[interval]=month"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        row(
            "a metered price without a meter",
            "POST",
            "/v1/prices",
            METERED + "&recurring[usage_type]=metered",
            None,
            "recurring[meter]",
            "Metered prices must be backed by a billing meter",
        ),
        row(
            "a metered price on an unknown meter",
            "POST",
            "/v1/prices",
            METERED + "&recurring[usage_type]=metered&recurring[meter]=mtr_missing",
            "resource_missing",
            "recurring[meter]",
            "No such billing meter: 'mtr_missing'",
        ),
        row(
            "a meter on a licensed price",
            "POST",
            "/v1/prices",
            METERED + "&recurring[meter]={meter}",
            None,
            "recurring[meter]",
            "recurring[meter] can only be set on a price with recurring[usage_type]=metered.",
        ),
    ],
)
def test_usage_based_prices(unchanged_world: World, request_: Any, expected: Any) -> None:
    assert_refused(unchanged_world, request_, expected)


def test_a_metered_price_with_its_meter_is_accepted(world: World) -> None:
    status, body = world.call(
        "POST", "/v1/prices", METERED + "&recurring[usage_type]=metered&recurring[meter]={meter}"
    )
    assert status == 200, body
    assert body["recurring"]["meter"] == world.ids["meter"]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        row(
            "beyond two intervals of the shortest subscription",
            "POST",
            "/v1/test_helpers/test_clocks/{clock}/advance",
            f"frozen_time={START + 70 * DAY}",
            None,
            "frozen_time",
            f"Cannot advance the test clock to {START + 70 * DAY}: it can move at most two "
            "intervals of its shortest subscription (2 months)",
        ),
        row(
            "beyond two years on a clock with no subscription",
            "POST",
            "/v1/test_helpers/test_clocks/{empty_clock}/advance",
            f"frozen_time={START + 740 * DAY}",
            None,
            "frozen_time",
            f"Cannot advance the test clock to {START + 740 * DAY}: it can move at most two "
            "years (it has no subscriptions)",
        ),
        row(
            "not after its frozen time",
            "POST",
            "/v1/test_helpers/test_clocks/{clock}/advance",
            f"frozen_time={START}",
            None,
            "frozen_time",
            "The frozen_time must be after the test clock's current frozen_time.",
        ),
    ],
)
def test_test_clocks(unchanged_world: World, request_: Any, expected: Any) -> None:
    assert_refused(unchanged_world, request_, expected)


def test_an_advance_answers_advancing_then_becomes_ready() -> None:
    emulator = emulator_in_process(clock_advance_delay=0.2)
    v1 = stripe.StripeClient(API_KEY, http_client=InProcessHTTPClient(emulator)).v1
    clock = v1.test_helpers.test_clocks.create({"frozen_time": START})
    customer = v1.customers.create({"test_clock": clock.id})
    price = v1.prices.create(
        {
            "product_data": {"name": "P"},
            "currency": "usd",
            "unit_amount": 0,
            "recurring": {"interval": "month"},
        }
    )
    v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 10}
    )
    target = START + 20 * DAY
    advancing = v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": target})
    assert advancing.status == "advancing"
    assert advancing.frozen_time == START
    assert advancing.status_details.advancing.target_frozen_time == target
    still = v1.test_helpers.test_clocks.retrieve(clock.id)
    assert still.status == "advancing"
    assert v1.subscriptions.list({"customer": customer.id}).data[0].status == "trialing"
    with pytest.raises(stripe.InvalidRequestError) as again:
        v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": target + DAY})
    assert again.value.code == "test_clock_not_ready"
    time.sleep(0.25)
    ready = v1.test_helpers.test_clocks.retrieve(clock.id)
    assert (ready.status, ready.frozen_time) == ("ready", target)
    assert ready.status_details.to_dict() == {}
    assert v1.subscriptions.list({"customer": customer.id}).data[0].status == "active"
    types = [event.type for event in v1.events.list({"limit": 100}).data]
    assert types.index("test_helpers.test_clock.ready") < types.index(
        "test_helpers.test_clock.advancing"
    )  # newest first: ready came after advancing


def test_an_advance_within_two_intervals_is_accepted(world: World) -> None:
    clock = advance_clock(world.v1, world.ids["clock"], START + 50 * DAY)
    assert clock.frozen_time == START + 50 * DAY


ITEM = "customer={customer}&"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        row(
            "on an invoice of another customer",
            "POST",
            "/v1/invoiceitems",
            ITEM + "amount=100&currency=usd&invoice={other_draft}",
            None,
            "invoice",
            "The invoice {other_draft} belongs to customer {other}, not to {customer}.",
        ),
        row(
            "on a subscription of another customer",
            "POST",
            "/v1/invoiceitems",
            ITEM + "amount=100&currency=usd&subscription={other_sub}",
            None,
            "subscription",
            "The subscription {other_sub} belongs to customer {other}, not to {customer}.",
        ),
        row(
            "with a recurring price",
            "POST",
            "/v1/invoiceitems",
            ITEM + "pricing[price]={monthly}",
            None,
            "pricing[price]",
            "The price specified is set to `type=recurring` but this field only accepts prices "
            "with `type=one_time`.",
        ),
        row(
            "with both an amount and a price",
            "POST",
            "/v1/invoiceitems",
            ITEM + "amount=100&currency=usd&pricing[price]={one_time}",
            None,
            "pricing",
            "You may only specify one of these parameters: amount, pricing, price_data, "
            "unit_amount_decimal.",
        ),
        row(
            "in another currency than its invoice",
            "POST",
            "/v1/invoiceitems",
            ITEM + "amount=100&currency=eur&invoice={customer_draft}",
            None,
            "currency",
            "The currency of this invoice item (eur) must match the currency of the invoice (usd).",
        ),
        row(
            "in an unknown currency",
            "POST",
            "/v1/invoiceitems",
            ITEM + "amount=100&currency=xyz",
            None,
            "currency",
            "Invalid currency: xyz. Stripe currently supports these currencies:",
        ),
        row(
            "with a negative quantity",
            "POST",
            "/v1/invoiceitems",
            ITEM + "pricing[price]={one_time}&quantity=-1",
            None,
            "quantity",
            "Invalid quantity: must be greater than or equal to 0.",
        ),
    ],
)
def test_invoice_items(unchanged_world: World, request_: Any, expected: Any) -> None:
    assert_refused(unchanged_world, request_, expected)


MIXED = "All prices on a subscription must have the same currency and billing interval."
TWICE = "Cannot add multiple subscription items with the same price: {monthly}."


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        row(
            "items of mixed intervals",
            "POST",
            "/v1/subscriptions",
            "customer={other}&items[0][price]={monthly}&items[1][price]={yearly}",
            None,
            "items",
            MIXED,
        ),
        row(
            "items of mixed currencies",
            "POST",
            "/v1/subscriptions",
            "customer={other}&items[0][price]={monthly}&items[1][price]={monthly_eur}",
            None,
            "items",
            MIXED,
        ),
        row(
            "an added item of another interval",
            "POST",
            "/v1/subscription_items",
            "subscription={customer_sub}&price={yearly}",
            None,
            "price",
            MIXED,
        ),
        row(
            "the same price twice",
            "POST",
            "/v1/subscriptions",
            "customer={other}&items[0][price]={monthly}&items[1][price]={monthly}",
            None,
            "items",
            TWICE,
        ),
        row(
            "the same price added by an update",
            "POST",
            "/v1/subscriptions/{customer_sub}",
            "items[0][price]={monthly}",
            None,
            "items",
            TWICE,
        ),
        row(
            "the same price added as an item",
            "POST",
            "/v1/subscription_items",
            "subscription={customer_sub}&price={monthly}",
            None,
            "price",
            TWICE,
        ),
        row(
            "a negative quantity",
            "POST",
            "/v1/subscriptions",
            "customer={other}&items[0][price]={monthly_addon}&items[0][quantity]=-1",
            None,
            "items[0][quantity]",
            "Invalid items[0][quantity]: must be greater than or equal to 0.",
        ),
        row(
            "a negative quantity by an update",
            "POST",
            "/v1/subscriptions/{customer_sub}",
            "items[0][id]={customer_sub_item}&items[0][quantity]=-2",
            None,
            "items[0][quantity]",
            "Invalid items[0][quantity]: must be greater than or equal to 0.",
        ),
        row(
            "a negative quantity on an item",
            "POST",
            "/v1/subscription_items/{customer_sub_item}",
            "quantity=-2",
            None,
            "quantity",
            "Invalid quantity: must be greater than or equal to 0.",
        ),
        row(
            "proration_date before the current period",
            "POST",
            "/v1/subscriptions/{customer_sub}",
            "items[0][id]={customer_sub_item}&items[0][quantity]=2&proration_date={before_period}",
            None,
            "proration_date",
            "The proration_date must be within the current billing period of the subscription",
        ),
        row(
            "proration_date after the current period",
            "POST",
            "/v1/subscription_items/{customer_sub_item}",
            "quantity=2&proration_date={after_period}",
            None,
            "proration_date",
            "The proration_date must be within the current billing period of the subscription",
        ),
        row(
            "cancel_at together with cancel_at_period_end",
            "POST",
            "/v1/subscriptions/{customer_sub}",
            "cancel_at={after_period}&cancel_at_period_end=true",
            None,
            "cancel_at_period_end",
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
        ),
        row(
            "cancel_at together with cancel_at_period_end on create",
            "POST",
            "/v1/subscriptions",
            "customer={other}&items[0][price]={monthly_addon}&cancel_at={after_period}"
            "&cancel_at_period_end=true",
            None,
            "cancel_at_period_end",
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
        ),
        row(
            "a canceled subscription's description",
            "POST",
            "/v1/subscriptions/{canceled_sub}",
            "description=late",
            None,
            "description",
            "A canceled subscription can only update its cancellation_details and metadata.",
        ),
    ],
)
def test_subscriptions(unchanged_world: World, request_: Any, expected: Any) -> None:
    assert_refused(unchanged_world, request_, expected)


def test_a_canceled_subscription_still_takes_metadata(world: World) -> None:
    status, body = world.call(
        "POST",
        "/v1/subscriptions/{canceled_sub}",
        "metadata[note]=churned&cancellation_details[comment]=too dear",
    )
    assert status == 200, body
    assert body["status"] == "canceled"
    assert body["metadata"] == {"note": "churned"}
    assert body["cancellation_details"]["comment"] == "too dear"


PRICE = "product={product}&"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        row(
            "both unit_amount and unit_amount_decimal",
            "POST",
            "/v1/prices",
            PRICE + "currency=usd&unit_amount=100&unit_amount_decimal=100.5",
            None,
            "unit_amount_decimal",
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
        ),
        row(
            "a negative unit_amount",
            "POST",
            "/v1/prices",
            PRICE + "currency=usd&unit_amount=-1",
            None,
            "unit_amount",
            "Invalid unit_amount: must be greater than or equal to 0.",
        ),
        row(
            "a negative unit_amount_decimal",
            "POST",
            "/v1/prices",
            PRICE + "currency=usd&unit_amount_decimal=-0.5",
            None,
            "unit_amount_decimal",
            "Invalid unit_amount_decimal: must be greater than or equal to 0.",
        ),
        row(
            "an unknown currency",
            "POST",
            "/v1/prices",
            PRICE + "currency=xyz&unit_amount=100",
            None,
            "currency",
            "Invalid currency: xyz. Stripe currently supports these currencies:",
        ),
        *(
            row(
                f"{count} {interval}s",
                "POST",
                "/v1/prices",
                PRICE + f"currency=usd&unit_amount=100&recurring[interval]={interval}"
                f"&recurring[interval_count]={count}",
                None,
                "recurring[interval_count]",
                "The maximum billing interval is one year",
            )
            for interval, count in (
                ("day", 366),
                ("week", 53),
                ("month", 13),
                ("year", 2),
                ("month", 0),
            )
        ),
    ],
)
def test_prices(unchanged_world: World, request_: Any, expected: Any) -> None:
    assert_refused(unchanged_world, request_, expected)


LONG_KEY = "k" * 41
LONG_VALUE = "v" * 501
MANY = "&".join(f"metadata[k{n}]=v" for n in range(51))


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        row(
            "51 metadata keys",
            "POST",
            "/v1/customers",
            MANY,
            None,
            "metadata",
            "Invalid metadata: metadata can have at most 50 keys (received 51).",
        ),
        row(
            "a 41-character metadata key",
            "POST",
            "/v1/customers/{customer}",
            f"metadata[{LONG_KEY}]=v",
            None,
            f"metadata[{LONG_KEY}]",
            "Invalid metadata: metadata keys can be at most 40 characters long",
        ),
        row(
            "a 501-character metadata value",
            "POST",
            "/v1/customers/{customer}",
            f"metadata[note]={LONG_VALUE}",
            None,
            "metadata[note]",
            "Invalid metadata[note]: metadata values can be at most 500 characters long.",
        ),
        row(
            "a long value in nested metadata",
            "POST",
            "/v1/subscriptions/{customer_sub}",
            f"items[0][id]={{customer_sub_item}}&items[0][metadata][note]={LONG_VALUE}",
            None,
            "items[0][metadata][note]",
            "Invalid items[0][metadata][note]: metadata values can be at most 500 characters",
        ),
        row(
            "customer together with customer_email on Checkout",
            "POST",
            "/v1/checkout/sessions",
            "mode=setup&success_url=http://x/ok&customer={customer}&customer_email=a@example.com",
            None,
            "customer_email",
            "You may only specify one of these parameters: customer, customer_email.",
        ),
    ],
)
def test_limits(unchanged_world: World, request_: Any, expected: Any) -> None:
    assert_refused(unchanged_world, request_, expected)


def test_metadata_limits_hold_for_what_the_object_ends_up_with(world: World) -> None:
    half = "&".join(f"metadata[a{n}]=v" for n in range(30))
    assert world.call("POST", "/v1/customers/{customer}", half)[0] == 200
    more = "&".join(f"metadata[b{n}]=v" for n in range(21))
    status, body = world.call("POST", "/v1/customers/{customer}", more)
    assert (status, body["error"]["param"]) == (400, "metadata")
    assert len(world.v1.customers.retrieve(world.ids["customer"]).metadata.to_dict()) == 30


LISTS = sorted(
    {
        route.pattern
        for route in ROUTES
        if route.method == "GET" and "limit" in route.params.__annotations__
    }
)


@pytest.mark.parametrize("limit", [0, 101])
@pytest.mark.parametrize("pattern", LISTS)
def test_every_list_takes_a_limit_from_1_to_100(
    unchanged_world: World, pattern: str, limit: int
) -> None:
    world = unchanged_world
    path = (
        pattern.replace("{customer}", world.ids["customer"])
        .replace("{invoice}", world.ids["open_invoice"])
        .replace("{product}", world.ids["product"])
        .replace("{session}", "cs_missing")
    )
    required = {
        "customer": world.ids["customer"],
        "query": "email:'customer@example.com'",
        "subscription": world.ids["customer_sub"],
    }
    route = next(r for r in ROUTES if r.method == "GET" and r.pattern == pattern)
    encoded = "&".join(
        [f"{key}={required[key]}" for key in sorted(route.params.__required_keys__)]
        + [f"limit={limit}"]
    )
    status, body = world.call("GET", path, encoded)
    assert status == 400, body
    assert body["error"]["param"] == "limit"
    assert body["error"]["message"] == (
        "Invalid limit: must be at least 1" if limit == 0 else "Invalid limit: must be at most 100"
    )


def test_idempotency_keys_are_at_most_255_characters(world: World) -> None:
    status, body = call(
        world.emulator,
        "POST",
        "/v1/customers",
        "email=a@example.com",
        {**AUTH, "Idempotency-Key": "k" * 256},
    )
    assert status == 400
    assert body["error"]["param"] == "idempotency_key"
    assert (
        call(
            world.emulator,
            "POST",
            "/v1/customers",
            "email=a@example.com",
            {**AUTH, "Idempotency-Key": "k" * 255},
        )[0]
        == 200
    )


def test_idempotency_keys_are_kept_24_hours(world: World) -> None:
    headers = {**AUTH, "Idempotency-Key": "signup-1"}
    with time_machine.travel(START, tick=False) as traveller:
        _, first = call(world.emulator, "POST", "/v1/customers", "email=a@example.com", headers)
        traveller.shift(23 * 3600)
        _, replay = call(world.emulator, "POST", "/v1/customers", "email=a@example.com", headers)
        assert replay["id"] == first["id"]
        traveller.shift(2 * 3600)
        _, fresh = call(world.emulator, "POST", "/v1/customers", "email=a@example.com", headers)
        assert fresh["id"] != first["id"]
        status, _ = call(world.emulator, "POST", "/v1/customers", "email=b@example.com", headers)
        assert status == 400  # within the new request's 24 hours, other parameters are refused
