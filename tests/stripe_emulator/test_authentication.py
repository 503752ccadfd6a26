"""A payment needing authentication (3-D Secure): the payment intent waits in
``requires_action``, the invoice stays open, ``pay`` answers Stripe's
``invoice_payment_intent_requires_action``, and the hosted invoice page completes it."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from .conftest import InProcessHarness, advance_clock

START = 1_800_000_000


@pytest.fixture
def api(in_process: InProcessHarness) -> Any:
    return in_process.client.v1


def _buyer(
    api: Any, token: str = "pm_card_authenticationRequired", **extra: Any
) -> tuple[Any, Any]:
    buyer = api.customers.create({"email": "sca@example.com", **extra})
    card = api.payment_methods.attach(token, {"customer": buyer.id})
    api.customers.update(buyer.id, {"invoice_settings": {"default_payment_method": card.id}})
    return buyer, card


def _open_invoice(api: Any, buyer: Any, amount: int = 2500) -> Any:
    draft = api.invoices.create({"customer": buyer.id, "auto_advance": False})
    api.invoice_items.create(
        {"customer": buyer.id, "invoice": draft.id, "amount": amount, "currency": "usd"}
    )
    return api.invoices.finalize_invoice(draft.id)


def _page(in_process: InProcessHarness, invoice: Any, body: str | None = None) -> tuple[int, str]:
    method = "GET" if body is None else "POST"
    answer = in_process.http.dispatch(method, invoice.hosted_invoice_url, {}, body)
    return answer.status, answer.body.decode()


def _types_since(in_process: InProcessHarness, count: int) -> list[str]:
    return [event.type for event in in_process.events()[count:]]


def test_pay_answers_requires_action_and_the_hosted_page_completes_it(
    api: Any, in_process: InProcessHarness
) -> None:
    in_process.subscribe_webhooks()
    buyer, card = _buyer(api)
    invoice = _open_invoice(api, buyer)
    seen = len(in_process.events())
    with pytest.raises(stripe.CardError) as needs_action:
        api.invoices.pay(invoice.id)
    error = needs_action.value
    assert (error.http_status, error.code) == (402, "invoice_payment_intent_requires_action")
    assert error.user_message.startswith("This payment requires additional user action")
    intent = api.payment_intents.retrieve(error.error.payment_intent.id)
    assert (intent.status, intent.payment_method, intent.latest_charge) == (
        "requires_action",
        card.id,
        None,
    )
    assert intent.next_action.type == "use_stripe_sdk"
    assert intent.next_action.use_stripe_sdk["stripe_js"] == invoice.hosted_invoice_url
    after = api.invoices.retrieve(invoice.id, {"expand": ["payments"]})
    assert (after.status, after.attempted, after.attempt_count) == ("open", True, 1)
    assert after.next_payment_attempt is None
    assert [p.status for p in after.payments.data] == ["open"]
    assert api.charges.list({"customer": buyer.id}).data == []
    events = in_process.events()[seen:]
    assert [e.type for e in events] == [
        "payment_intent.created",
        "payment_intent.requires_action",
        "invoice.payment_action_required",
    ]
    assert events[-1].data.object.status == "open" and events[-1].data.object.attempt_count == 1

    status, page = _page(in_process, invoice)
    assert status == 200 and "Complete authentication" in page and "Amount due: 25.00 USD" in page
    seen = len(in_process.events())
    status, page = _page(in_process, invoice, "authenticate=complete")
    assert status == 200 and "is paid" in page
    paid = api.invoices.retrieve(invoice.id, {"expand": ["payments"]})
    assert (paid.status, paid.amount_paid) == ("paid", 2500)
    assert [(p.status, p.amount_paid) for p in paid.payments.data] == [("paid", 2500)]
    intent = api.payment_intents.retrieve(intent.id)
    assert (intent.status, intent.next_action, intent.amount_received) == ("succeeded", None, 2500)
    charge = api.charges.retrieve(intent.latest_charge)
    assert charge.status == "succeeded"
    assert charge.payment_method_details.card.three_d_secure.result == "authenticated"
    assert _types_since(in_process, seen) == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]


def test_a_renewal_needing_authentication_leaves_the_subscription_past_due(
    api: Any, in_process: InProcessHarness
) -> None:
    in_process.subscribe_webhooks()
    clock = api.test_helpers.test_clocks.create({"frozen_time": START})
    buyer, card = _buyer(api, "pm_card_visa", test_clock=clock.id)
    price = api.prices.create(
        {"product_data": {"name": "Plan"}, "currency": "usd", "unit_amount": 1500,
         "recurring": {"interval": "month"}}
    )  # fmt: skip
    subscription = api.subscriptions.create({"customer": buyer.id, "items": [{"price": price.id}]})
    # The card now needs 3-D Secure on every payment (a bank's new rule, say).
    in_process.emulator.card_behavior_set(card.id, requires_action=True)
    period_end = subscription["items"].data[0].current_period_end
    advance_clock(api, clock.id, period_end + 60)
    in_process.settle()
    advance_clock(api, clock.id, period_end + 7200)
    renewal = api.invoices.list({"subscription": subscription.id}).data[0]
    assert (renewal.billing_reason, renewal.status, renewal.next_payment_attempt) == (
        "subscription_cycle",
        "open",
        None,
    )
    assert api.subscriptions.retrieve(subscription.id).status == "past_due"
    types = [event.type for event in in_process.events()]
    assert "invoice.payment_action_required" in types and "invoice.payment_failed" not in types

    status, page = _page(in_process, renewal, "authenticate=complete")
    assert status == 200 and "is paid" in page
    assert api.subscriptions.retrieve(subscription.id).status == "active"


def test_failing_authentication_fails_the_payment_and_the_page_offers_cards(
    api: Any, in_process: InProcessHarness
) -> None:
    in_process.subscribe_webhooks()
    buyer, _ = _buyer(api)
    invoice = _open_invoice(api, buyer)
    with pytest.raises(stripe.CardError):
        api.invoices.pay(invoice.id)
    seen = len(in_process.events())
    status, page = _page(in_process, invoice, "authenticate=fail")
    assert status == 402 and "failed authentication" in page
    assert "Complete authentication" not in page and "pm_card_visa" in page
    [intent] = api.payment_intents.list({"customer": buyer.id}).data
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "payment_intent_authentication_failure"
    assert api.invoices.retrieve(invoice.id).status == "open"
    assert _types_since(in_process, seen) == [
        "payment_intent.payment_failed",
        "invoice.payment_failed",
    ]
    # A second authentication answer has nothing to authenticate.
    status, page = _page(in_process, invoice, "authenticate=complete")
    assert status == 402 and "no payment waiting for authentication" in page

    status, page = _page(in_process, invoice, "payment_method=pm_card_visa")
    assert status == 200 and "is paid" in page


def test_paying_with_another_card_cancels_the_payment_waiting_for_authentication(
    api: Any, in_process: InProcessHarness
) -> None:
    buyer, _ = _buyer(api)
    invoice = _open_invoice(api, buyer)
    with pytest.raises(stripe.CardError) as needs_action:
        api.invoices.pay(invoice.id)
    waiting = needs_action.value.error.payment_intent.id
    visa = api.payment_methods.attach("pm_card_visa", {"customer": buyer.id})
    assert api.invoices.pay(invoice.id, {"payment_method": visa.id}).status == "paid"
    old = api.payment_intents.retrieve(waiting)
    assert (old.status, old.cancellation_reason) == ("canceled", "automatic")
    payments = api.invoices.retrieve(invoice.id, {"expand": ["payments"]}).payments.data
    assert sorted(p.status for p in payments) == ["canceled", "paid"]
    status, page = _page(in_process, invoice)
    assert status == 200 and "Complete authentication" not in page and "paid" in page


def test_paying_again_with_the_same_card_asks_again(api: Any) -> None:
    buyer, _ = _buyer(api)
    invoice = _open_invoice(api, buyer)
    ids = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as needs_action:
            api.invoices.pay(invoice.id)
        ids.append(needs_action.value.error.payment_intent.id)
    assert [api.payment_intents.retrieve(i).status for i in ids] == ["canceled", "requires_action"]
    # Stripe counts the first attempt, and after it only automatic ones (attempt_count's
    # documentation): a second `pay` does not move it.
    assert api.invoices.retrieve(invoice.id).attempt_count == 1


def test_voiding_cancels_the_payment_waiting_for_authentication(
    api: Any, in_process: InProcessHarness
) -> None:
    buyer, _ = _buyer(api)
    invoice = _open_invoice(api, buyer)
    with pytest.raises(stripe.CardError) as needs_action:
        api.invoices.pay(invoice.id)
    api.invoices.void_invoice(invoice.id)
    intent = api.payment_intents.retrieve(needs_action.value.error.payment_intent.id)
    assert (intent.status, intent.cancellation_reason) == ("canceled", "void_invoice")
    status, page = _page(in_process, invoice, "authenticate=complete")
    assert status == 200 and "Complete authentication" not in page  # a void invoice: no form
    assert api.invoices.retrieve(invoice.id).status == "void"


def test_a_new_subscription_needing_authentication_is_incomplete_until_completed(
    api: Any, in_process: InProcessHarness
) -> None:
    buyer, _ = _buyer(api)
    price = api.prices.create(
        {"product_data": {"name": "Plan"}, "currency": "usd", "unit_amount": 900,
         "recurring": {"interval": "month"}}
    )  # fmt: skip
    subscription = api.subscriptions.create({"customer": buyer.id, "items": [{"price": price.id}]})
    assert subscription.status == "incomplete"
    first = api.invoices.retrieve(subscription.latest_invoice)
    assert first.status == "open"
    [intent] = api.payment_intents.list({"customer": buyer.id}).data
    assert intent.status == "requires_action"
    status, page = _page(in_process, first, "authenticate=complete")
    assert status == 200 and "is paid" in page
    assert api.subscriptions.retrieve(subscription.id).status == "active"


def test_the_hosted_page_authenticates_a_card_chosen_there(
    api: Any, in_process: InProcessHarness
) -> None:
    buyer, _ = _buyer(api, "pm_card_chargeCustomerFail")
    invoice = _open_invoice(api, buyer)
    status, page = _page(in_process, invoice, "payment_method=pm_card_authenticationRequired")
    assert status == 200 and "Authentication required" in page
    assert api.invoices.retrieve(invoice.id).status == "open"
    status, page = _page(in_process, invoice, "authenticate=complete")
    assert status == 200 and "is paid" in page


def test_checkout_authenticates_on_its_page_and_the_subscription_is_active(
    api: Any, in_process: InProcessHarness
) -> None:
    # Checkout is on session: the customer passes 3-D Secure there and then.
    price = api.prices.create(
        {"product_data": {"name": "Plan"}, "currency": "usd", "unit_amount": 900,
         "recurring": {"interval": "month"}}
    )  # fmt: skip
    session = api.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://portal.example/done",
            "customer_email": "sca@example.com",
        }
    )
    status, location = in_process.submit_checkout(session.url, "pm_card_authenticationRequired")
    assert (status, location) == (303, "https://portal.example/done")
    subscription = api.subscriptions.retrieve(
        api.checkout.sessions.retrieve(session.id).subscription
    )
    assert subscription.status == "active"
    [intent] = api.payment_intents.list({"customer": subscription.customer}).data
    assert intent.status == "succeeded"
    charge = api.charges.retrieve(intent.latest_charge)
    assert charge.payment_method_details.card.three_d_secure.result == "authenticated"
