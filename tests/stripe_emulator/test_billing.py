"""Billing behaviour: prorations, previews, pending invoice items, manual invoices,
cancellation, trials and payment methods, driven in-process with stripe-python."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from .conftest import InProcessHarness, advance_clock

DAY = 86400
START = 1_800_000_000


@pytest.fixture
def api(in_process: InProcessHarness) -> Any:
    return in_process.client.v1


def _customer_with_card(api: Any, test_card: str = "pm_card_visa") -> tuple[Any, Any]:
    clock = api.test_helpers.test_clocks.create({"frozen_time": START})
    customer = api.customers.create({"email": "bill@example.com", "test_clock": clock.id})
    card = api.payment_methods.attach(test_card, {"customer": customer.id})
    api.customers.update(customer.id, {"invoice_settings": {"default_payment_method": card.id}})
    return customer, clock


def _monthly(api: Any, amount: int, **extra: Any) -> Any:
    return api.prices.create(
        {
            "product_data": {"name": f"Plan {amount}"},
            "currency": "usd",
            "unit_amount": amount,
            "recurring": {"interval": "month", **extra},
        }
    )


def _pending(api: Any, customer: Any) -> list[Any]:
    return api.invoice_items.list({"customer": customer.id, "pending": True}).data


def test_price_change_creates_prorations_for_the_next_invoice(
    api: Any, in_process: InProcessHarness
) -> None:
    customer, clock = _customer_with_card(api)
    basic, pro = _monthly(api, 1000), _monthly(api, 3000)
    subscription = api.subscriptions.create(
        {"customer": customer.id, "items": [{"price": basic.id}]}
    )
    item = subscription["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    halfway = start + (end - start) // 2
    advance_clock(api, clock.id, halfway)

    preview = api.invoices.create_preview(
        {
            "subscription": subscription.id,
            "subscription_details": {"items": [{"id": item.id, "price": pro.id}]},
        }
    )
    assert [line.amount for line in preview.lines.data] == [-500, 1500, 3000]
    assert _pending(api, customer) == []  # a preview changes nothing

    api.subscriptions.update(
        subscription.id,
        {"items": [{"id": item.id, "price": pro.id}], "proration_behavior": "create_prorations"},
    )
    pending = _pending(api, customer)
    assert sorted(i.amount for i in pending) == [-500, 1500]
    assert all(i.proration for i in pending)
    assert {i.parent.subscription_details.subscription for i in pending} == {subscription.id}

    advance_clock(api, clock.id, end + 2 * 3600)
    renewal = api.invoices.retrieve(api.subscriptions.retrieve(subscription.id).latest_invoice)
    assert renewal.status == "paid"
    assert sorted(line.amount for line in renewal.lines.data) == [-500, 1500, 3000]
    assert renewal.amount_paid == 4000
    assert _pending(api, customer) == []


def test_always_invoice_bills_at_once_and_none_bills_nothing(api: Any) -> None:
    customer, clock = _customer_with_card(api)
    basic, pro = _monthly(api, 1000), _monthly(api, 3000)
    subscription = api.subscriptions.create(
        {"customer": customer.id, "items": [{"price": basic.id}]}
    )
    item = subscription["items"].data[0]
    advance_clock(
        api,
        clock.id,
        item.current_period_start + (item.current_period_end - item.current_period_start) // 2,
    )
    api.subscriptions.update(
        subscription.id, {"items": [{"id": item.id, "quantity": 2}], "proration_behavior": "none"}
    )
    assert _pending(api, customer) == []
    updated = api.subscriptions.update(
        subscription.id,
        {"items": [{"id": item.id, "price": pro.id}], "proration_behavior": "always_invoice"},
    )
    invoice = api.invoices.retrieve(updated.latest_invoice)
    assert (invoice.billing_reason, invoice.status) == ("subscription_update", "paid")
    # Two seats: half a period of 2 x 10.00 credited, half a period of 2 x 30.00 charged.
    assert sorted(line.amount for line in invoice.lines.data) == [-1000, 3000]


def test_pending_invoice_items_join_the_renewal(api: Any) -> None:
    customer, clock = _customer_with_card(api)
    price = _monthly(api, 1000)
    subscription = api.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}], "trial_end": START + 5 * DAY}
    )
    assert subscription.status == "trialing"
    usage = api.invoice_items.create(
        {"customer": customer.id, "amount": 250, "currency": "usd", "description": "API calls"}
    )
    api.invoice_items.update(usage.id, {"amount": 300, "metadata": {"line": "usage-1"}})
    gone = api.invoice_items.create({"customer": customer.id, "amount": 99, "currency": "usd"})
    assert api.invoice_items.delete(gone.id).deleted is True
    assert [i.id for i in _pending(api, customer)] == [usage.id]

    advance_clock(api, clock.id, START + 5 * DAY + 60)
    draft = api.invoices.retrieve(api.subscriptions.retrieve(subscription.id).latest_invoice)
    assert draft.status == "draft"
    assert draft.automatically_finalizes_at == START + 5 * DAY + 3600
    assert sorted(line.amount for line in draft.lines.data) == [300, 1000]
    assert api.invoice_items.retrieve(usage.id).invoice == draft.id
    api.invoice_items.update(usage.id, {"amount": 400})
    assert api.invoices.retrieve(draft.id).total == 1400

    advance_clock(api, clock.id, START + 5 * DAY + 2 * 3600)
    paid = api.invoices.retrieve(draft.id)
    assert (paid.status, paid.amount_paid) == ("paid", 1400)
    with pytest.raises(stripe.InvalidRequestError):
        api.invoice_items.update(usage.id, {"amount": 1})


def test_manual_invoice_finalize_pay_and_void(api: Any, in_process: InProcessHarness) -> None:
    in_process.subscribe_webhooks()
    customer, _ = _customer_with_card(api)
    draft = api.invoices.create({"customer": customer.id, "auto_advance": False})
    api.invoice_items.create(
        {"customer": customer.id, "invoice": draft.id, "amount": 700, "currency": "usd"}
    )
    finalized = api.invoices.finalize_invoice(draft.id)
    assert (finalized.status, finalized.amount_due) == ("open", 700)
    assert finalized.number.endswith("-0001")
    assert api.invoices.pay(finalized.id).status == "paid"

    other = api.invoices.create(
        {"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    api.invoice_items.create(
        {"customer": customer.id, "invoice": other.id, "amount": 100, "currency": "usd"}
    )
    api.invoices.finalize_invoice(other.id)
    voided = api.invoices.void_invoice(other.id)
    assert voided.status == "void"
    with pytest.raises(stripe.InvalidRequestError):
        api.invoices.pay(other.id)
    listed = api.invoices.list({"customer": customer.id, "status": "paid"}).data
    assert [i.id for i in listed] == [finalized.id]
    types = [event.type for event in in_process.events()]
    assert "invoice.voided" in types and "invoice.finalized" in types


def test_declined_card_on_pay_is_a_402_with_decline_code(api: Any) -> None:
    customer, _ = _customer_with_card(api, "pm_card_chargeCustomerFail")
    invoice = api.invoices.create({"customer": customer.id})
    api.invoice_items.create(
        {"customer": customer.id, "invoice": invoice.id, "amount": 500, "currency": "usd"}
    )
    with pytest.raises(stripe.CardError) as declined:
        api.invoices.pay(invoice.id)
    assert declined.value.error.decline_code == "generic_decline"
    assert api.invoices.retrieve(invoice.id).status == "open"
    with pytest.raises(stripe.CardError) as broke:
        api.invoices.pay(invoice.id, {"payment_method": "pm_card_chargeDeclinedInsufficientFunds"})
    assert broke.value.error.decline_code == "insufficient_funds"
    charges = api.charges.list({"customer": customer.id}).data
    assert [c.status for c in charges] == ["failed"]
    intent = api.payment_intents.retrieve(charges[0].payment_intent)
    assert intent.last_payment_error.decline_code == "generic_decline"


def test_cancel_now_resume_and_cancel_at_period_end_undone(api: Any) -> None:
    customer, _ = _customer_with_card(api)
    price = _monthly(api, 1000)
    subscription = api.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}]}
    )
    scheduled = api.subscriptions.update(subscription.id, {"cancel_at_period_end": True})
    assert scheduled.cancel_at == scheduled["items"].data[0].current_period_end
    undone = api.subscriptions.update(subscription.id, {"cancel_at_period_end": False})
    assert (undone.cancel_at, undone.cancel_at_period_end) == (None, False)
    with pytest.raises(stripe.InvalidRequestError):
        api.subscriptions.resume(subscription.id)
    canceled = api.subscriptions.cancel(subscription.id)
    assert canceled.status == "canceled" and canceled.ended_at == START
    assert api.subscriptions.list({"customer": customer.id}).data == []
    assert len(api.subscriptions.list({"customer": customer.id, "status": "all"}).data) == 1


def test_subscription_needs_a_payment_method_unless_trialing(api: Any) -> None:
    customer = api.customers.create({})
    price = _monthly(api, 1000)
    with pytest.raises(stripe.InvalidRequestError):
        api.subscriptions.create({"customer": customer.id, "items": [{"price": price.id}]})
    trialing = api.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 3}
    )
    assert trialing.status == "trialing"
    incomplete = api.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": price.id}],
            "payment_behavior": "default_incomplete",
        }
    )
    assert incomplete.status == "incomplete"


def test_metered_prices_bill_nothing_without_usage(api: Any) -> None:
    customer, _ = _customer_with_card(api)
    meter = api.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "sum"},
        }
    )
    metered = _monthly(api, 5, usage_type="metered", meter=meter.id)
    subscription = api.subscriptions.create(
        {"customer": customer.id, "items": [{"price": metered.id}], "expand": ["latest_invoice"]}
    )
    assert subscription.status == "active"
    assert subscription.latest_invoice.amount_due == 0
    assert "quantity" not in subscription["items"].data[0]


def test_lookup_keys_and_their_transfer(api: Any) -> None:
    old = _monthly(api, 1000)
    api.prices.update(old.id, {"lookup_key": "pro_monthly"})
    with pytest.raises(stripe.InvalidRequestError) as taken:
        api.prices.create(
            {
                "product": old.product,
                "currency": "usd",
                "unit_amount": 1200,
                "lookup_key": "pro_monthly",
            }
        )
    assert taken.value.param == "lookup_key"
    new = api.prices.create(
        {
            "product": old.product,
            "currency": "usd",
            "unit_amount": 1200,
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
            "transfer_lookup_key": True,
        }
    )
    assert [p.id for p in api.prices.list({"lookup_keys": ["pro_monthly"]}).data] == [new.id]
    assert api.prices.retrieve(old.id).lookup_key is None
    assert api.products.features.list(old.product).data == []


def test_detach_clears_the_default_and_declining_cards_cannot_attach(
    api: Any, in_process: InProcessHarness
) -> None:
    in_process.subscribe_webhooks()
    customer, _ = _customer_with_card(api)
    card = api.customers.retrieve(customer.id).invoice_settings.default_payment_method
    assert api.payment_methods.detach(card).customer is None
    assert api.customers.retrieve(customer.id).invoice_settings.default_payment_method is None
    assert api.customers.payment_methods.list(customer.id).data == []
    with pytest.raises(stripe.CardError):
        api.payment_methods.attach("pm_card_chargeDeclined", {"customer": customer.id})
    intent = api.setup_intents.create({"customer": customer.id})
    with pytest.raises(stripe.CardError):
        api.setup_intents.confirm(intent.id, {"payment_method": "pm_card_chargeDeclined"})
    confirmed = api.setup_intents.confirm(intent.id, {"payment_method": "pm_card_mastercard"})
    assert confirmed.status == "succeeded"
    assert api.payment_methods.retrieve(confirmed.payment_method).card.brand == "mastercard"
    types = [event.type for event in in_process.events()]
    assert {
        "payment_method.detached",
        "setup_intent.setup_failed",
        "setup_intent.succeeded",
    } <= set(types)


def test_events_and_webhook_endpoints(api: Any, in_process: InProcessHarness) -> None:
    in_process.subscribe_webhooks()
    customer = api.customers.create({"email": "e@example.com"})
    api.customers.update(customer.id, {"name": "Eve"})
    updated = api.events.list({"type": "customer.updated"}).data[0]
    assert updated.data.previous_attributes.to_dict() == {"name": None}
    assert api.events.retrieve(updated.id).data.object.name == "Eve"
    assert {e.type for e in api.events.list({"type": "customer.*"}).data} == {
        "customer.created",
        "customer.updated",
    }
    [endpoint] = api.webhook_endpoints.list().data
    assert "secret" not in endpoint
    api.webhook_endpoints.update(endpoint.id, {"disabled": True})
    api.customers.create({})
    assert [e.type for e in in_process.events()] == ["customer.created", "customer.updated"]
    assert api.webhook_endpoints.delete(endpoint.id).deleted is True


def test_unknown_ids_in_nested_parameters_are_named(api: Any) -> None:
    customer = api.customers.create({})
    with pytest.raises(stripe.InvalidRequestError) as missing:
        api.subscriptions.create({"customer": customer.id, "items": [{"price": "price_nope"}]})
    assert (missing.value.http_status, missing.value.param) == (404, "items[0][price]")
    assert missing.value.user_message == "No such price: 'price_nope'"
    with pytest.raises(stripe.InvalidRequestError) as not_attached:
        other = api.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
        api.customers.update(
            customer.id, {"invoice_settings": {"default_payment_method": other.id}}
        )
    assert not_attached.value.param == "invoice_settings[default_payment_method]"


def test_deleting_a_customer_cancels_its_subscriptions(
    api: Any, in_process: InProcessHarness
) -> None:
    in_process.subscribe_webhooks()
    customer, _ = _customer_with_card(api)
    subscription = api.subscriptions.create(
        {"customer": customer.id, "items": [{"price": _monthly(api, 1000).id}]}
    )
    assert api.customers.delete(customer.id).deleted is True
    assert api.customers.retrieve(customer.id).deleted is True
    assert api.subscriptions.retrieve(subscription.id).status == "canceled"
    types = [event.type for event in in_process.events()]
    assert types[-2:] == ["customer.subscription.deleted", "customer.deleted"]


def test_hosted_invoice_page_pays_an_open_invoice(api: Any, in_process: InProcessHarness) -> None:
    customer, _ = _customer_with_card(api, "pm_card_chargeCustomerFail")
    invoice = api.invoices.create({"customer": customer.id})
    api.invoice_items.create(
        {"customer": customer.id, "invoice": invoice.id, "amount": 900, "currency": "usd"}
    )
    invoice = api.invoices.finalize_invoice(invoice.id)
    page = in_process.http.dispatch("GET", invoice.hosted_invoice_url, {})
    assert page.status == 200 and b"Amount due: 9.00 USD" in page.body
    declined = in_process.http.dispatch(
        "POST",
        invoice.hosted_invoice_url,
        {},
        "payment_method=pm_card_chargeDeclinedInsufficientFunds",
    )
    assert declined.status == 402 and b"insufficient funds" in declined.body
    paid = in_process.http.dispatch(
        "POST", invoice.hosted_invoice_url, {}, "payment_method=pm_card_visa"
    )
    assert paid.status == 200 and b"is paid" in paid.body
    assert api.invoices.retrieve(invoice.id).status == "paid"


@pytest.mark.parametrize(
    ("kind", "value", "valid"),
    [
        ("eu_vat", "DE123456789", True),
        ("eu_vat", "ATU12345678", True),
        ("eu_vat", "DE1", False),
        ("eu_vat", "US123456789", False),
        ("gb_vat", "GB123456789", True),
        ("gb_vat", "GB12345", False),
    ],
)
def test_vat_numbers_are_checked_like_stripe_does(in_process, kind, value, valid):
    api = in_process.client.v1.customers
    customer = api.create({"email": "vat@example.com"})
    if valid:
        assert api.tax_ids.create(customer.id, {"type": kind, "value": value}).value == value
        return
    with pytest.raises(stripe.InvalidRequestError) as error:
        api.tax_ids.create(customer.id, {"type": kind, "value": value})
    assert (error.value.code, error.value.param) == ("tax_id_invalid", "value")
    assert error.value.user_message == f"Invalid value for {kind}."


def test_tax_ids_by_their_own_id(in_process):
    """`/v1/tax_ids/{id}` answers a customer's tax id (dj-stripe fetches it so after
    customer.tax_id.created); deleting it there emits customer.tax_id.deleted."""
    api = in_process.client.v1
    customer = api.customers.create({"email": "vat@example.com"})
    tax_id = api.customers.tax_ids.create(customer.id, {"type": "eu_vat", "value": "DE123456789"})

    found = api.tax_ids.retrieve(tax_id.id)
    assert (found.id, found.value, found.owner.customer) == (tax_id.id, "DE123456789", customer.id)
    assert found.to_dict() == api.customers.tax_ids.retrieve(customer.id, tax_id.id).to_dict()
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        api.tax_ids.retrieve("txi_unknown")
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as unknown_param:
        api.tax_ids.retrieve(tax_id.id, {"customer": customer.id})  # type: ignore[typeddict-unknown-key]
    assert unknown_param.value.http_status == 400

    gone = api.tax_ids.delete(tax_id.id)
    assert (gone.id, gone.deleted) == (tax_id.id, True)
    assert api.customers.tax_ids.list(customer.id).data == []
    with pytest.raises(stripe.InvalidRequestError):
        api.tax_ids.retrieve(tax_id.id)
    in_process.settle()
    types = [event.type for event in api.events.list({"limit": 10}).data]
    assert types[:2] == ["customer.tax_id.deleted", "customer.tax_id.created"]


def test_a_deleted_customer_answers_its_tombstone_even_when_expanded(in_process):
    """Stripe answers a deleted customer with a 200 and `deleted: true` (a subset of the
    customer); dj-stripe always expands `default_source` and `sources` when it retrieves one."""
    api = in_process.client.v1
    customer = api.customers.create({"email": "gone@example.com"})
    api.customers.delete(customer.id)

    for params in ({}, {"expand": ["default_source", "sources"]}):
        found = api.customers.retrieve(customer.id, params)
        assert found.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    with pytest.raises(stripe.InvalidRequestError) as live:
        api.customers.retrieve(api.customers.create({}).id, {"expand": ["nothing_here"]})
    assert live.value.http_status == 400  # a live customer's expand is still checked


def _subscribed(in_process: InProcessHarness):
    api = in_process.client.v1
    customer = api.customers.create({"email": "sub@example.com"})
    api.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    product = api.products.create({"name": "Pro"})
    price = api.prices.create(
        {"product": product.id, "unit_amount": 3000, "currency": "usd",
         "recurring": {"interval": "month"}}
    )  # fmt: skip
    method = api.payment_methods.list({"customer": customer.id}).data[0]
    subscription = api.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}],
         "default_payment_method": method.id}
    )  # fmt: skip
    return api, customer, subscription


def test_a_refused_request_changes_nothing_and_emits_nothing(in_process):
    api, _customer, subscription = _subscribed(in_process)
    in_process.settle()
    delivered = len(in_process.raw_deliveries())
    item = subscription["items"].data[0].id

    with pytest.raises(stripe.InvalidRequestError):
        api.subscriptions.update(
            subscription.id,
            {"description": "changed", "items": [{"id": item, "price": "price_missing"}]},
        )

    assert api.subscriptions.retrieve(subscription.id).description is None
    in_process.settle()
    assert len(in_process.raw_deliveries()) == delivered


@pytest.mark.parametrize("name", ["min_period_end", "max_period_end", "max_billed_until"])
def test_cancel_at_names_the_period_end(in_process, name):
    api, _customer, subscription = _subscribed(in_process)
    updated = api.subscriptions.update(subscription.id, {"cancel_at": name})
    assert updated.cancel_at == subscription["items"].data[0].current_period_end
    assert updated.cancel_at_period_end is True


def test_cancel_at_in_the_past_is_refused(in_process):
    api, _customer, subscription = _subscribed(in_process)
    with pytest.raises(stripe.InvalidRequestError) as error:
        api.subscriptions.update(subscription.id, {"cancel_at": 1_000_000})
    assert error.value.param == "cancel_at"


def test_checkout_trial_end_must_be_48_hours_ahead(in_process):
    api, customer, subscription = _subscribed(in_process)
    price = subscription["items"].data[0].price.id
    with pytest.raises(stripe.InvalidRequestError) as error:
        api.checkout.sessions.create(
            {"mode": "subscription", "customer": customer.id,
             "line_items": [{"price": price, "quantity": 1}], "success_url": "http://x/ok",
             "subscription_data": {"trial_end": int(time.time()) + 3600}}
        )  # fmt: skip
    assert error.value.param == "subscription_data[trial_end]"


def test_the_hosted_page_shows_any_refusal_and_keeps_nothing(in_process):
    api, customer, subscription = _subscribed(in_process)
    price = subscription["items"].data[0].price.id
    session = api.checkout.sessions.create(
        {"mode": "subscription", "customer": customer.id,
         "line_items": [{"price": price, "quantity": 1}], "success_url": "http://x/ok"}
    )  # fmt: skip
    api.customers.delete(customer.id)
    methods_before = len(in_process.emulator.store.select("payment_method"))

    status, page = in_process.submit_checkout(session.url, "pm_card_mastercard")

    assert status >= 400
    assert "No such customer" in page
    assert len(in_process.emulator.store.select("payment_method")) == methods_before


def test_a_downgrade_credit_lowers_the_next_invoice(in_process):
    api = in_process.client.v1
    clock = api.test_helpers.test_clocks.create({"frozen_time": 1_800_000_000})
    customer = api.customers.create({"email": "credit@example.com", "test_clock": clock.id})
    method = api.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    product = api.products.create({"name": "Plan"})
    high, low = (
        api.prices.create({"product": product.id, "unit_amount": amount, "currency": "usd",
                           "recurring": {"interval": "month"}})
        for amount in (3000, 1000)
    )  # fmt: skip
    subscription = api.subscriptions.create(
        {"customer": customer.id, "items": [{"price": high.id}],
         "default_payment_method": method.id}
    )  # fmt: skip
    item = subscription["items"].data[0]
    midway = (item.current_period_start + item.current_period_end) // 2
    advance_clock(api, clock.id, midway)

    api.subscriptions.update(
        subscription.id,
        {"items": [{"id": item.id, "price": low.id}], "proration_behavior": "always_invoice"},
    )
    downgrade = api.invoices.list({"subscription": subscription.id}).data[0]
    assert downgrade.total < 0
    assert (downgrade.amount_due, downgrade.ending_balance) == (0, downgrade.total)
    assert api.customers.retrieve(customer.id).balance == downgrade.total

    advance_clock(api, clock.id, item.current_period_end + 7200)
    renewal = api.invoices.list({"subscription": subscription.id}).data[0]
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.starting_balance == downgrade.total
    assert renewal.amount_due == 1000 + downgrade.total
    assert api.customers.retrieve(customer.id).balance == 0


def test_listing_ended_subscriptions(in_process):
    api, _customer, subscription = _subscribed(in_process)
    assert api.subscriptions.list({"status": "ended"}).data == []
    api.subscriptions.cancel(subscription.id)
    assert [s.id for s in api.subscriptions.list({"status": "ended"}).data] == [subscription.id]
    assert api.subscriptions.list().data == []


def _paid_with(api: Any, invoice_id: str) -> str:
    """The payment method that paid an invoice, through its invoice payment."""
    [payment] = api.invoice_payments.list({"invoice": invoice_id}).data
    return api.payment_intents.retrieve(payment.payment.payment_intent).payment_method


def test_a_renewal_charges_the_subscriptions_card_before_the_customers_default(in_process):
    # As Stripe: the invoice's default payment method, then the subscription's, then the
    # customer's invoice_settings.default_payment_method.
    api = in_process.client.v1
    customer, clock = _customer_with_card(api)  # a Visa, the customer's default
    visa = api.customers.retrieve(customer.id).invoice_settings.default_payment_method
    mastercard = api.payment_methods.attach("pm_card_mastercard", {"customer": customer.id})
    subscription = api.subscriptions.create(
        {"customer": customer.id, "items": [{"price": _monthly(api, 1000).id}],
         "default_payment_method": mastercard.id}
    )  # fmt: skip
    assert _paid_with(api, subscription.latest_invoice) == mastercard.id
    item = subscription["items"].data[0]
    advance_clock(api, clock.id, item.current_period_end + 7200)
    renewal = api.invoices.list({"subscription": subscription.id}).data[0]
    assert (renewal.billing_reason, renewal.status) == ("subscription_cycle", "paid")
    assert _paid_with(api, renewal.id) == mastercard.id

    cleared = api.subscriptions.update(subscription.id, {"default_payment_method": ""})
    assert cleared.default_payment_method is None
    period_end = api.subscriptions.retrieve(subscription.id)["items"].data[0].current_period_end
    advance_clock(api, clock.id, period_end + 7200)
    renewal = api.invoices.list({"subscription": subscription.id}).data[0]
    assert (renewal.billing_reason, renewal.status) == ("subscription_cycle", "paid")
    assert _paid_with(api, renewal.id) == visa


def test_a_card_number_has_one_fingerprint_however_often_it_is_entered(in_process):
    api = in_process.client.v1
    customer = api.customers.create({})
    first = api.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    again = api.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    other = api.payment_methods.create({"type": "card", "card": {"token": "tok_mastercard"}})
    assert first.id != again.id
    assert first.card.fingerprint == again.card.fingerprint
    assert other.card.fingerprint != first.card.fingerprint
