"""Cards that decline for a reason: Stripe's declining test cards, and a saved card told by
the emulator's control endpoint to decline (it expired, or was reported lost, after it was
saved) or to need authentication."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from stripe_emulator.cards import DECLINE_CODES

from .conftest import InProcessHarness, RunningServer, advance_clock, http_client

START = 1_800_000_000

# token -> (decline_code, the error's code, its message), as Stripe answers them.
DECLINING_CARDS = {
    "pm_card_chargeDeclined": ("generic_decline", "card_declined", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "insufficient_funds",
        "card_declined",
        "Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedLostCard": ("lost_card", "card_declined", "Your card was declined."),
    "pm_card_visa_chargeDeclinedLostCard": (
        "lost_card",
        "card_declined",
        "Your card was declined.",
    ),
    "pm_card_chargeDeclinedStolenCard": (
        "stolen_card",
        "card_declined",
        "Your card was declined.",
    ),
    "pm_card_chargeDeclinedExpiredCard": (
        "expired_card",
        "expired_card",
        "Your card has expired.",
    ),
    "pm_card_chargeDeclinedIncorrectCvc": (
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    "pm_card_chargeDeclinedProcessingError": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "pm_card_chargeDeclinedFraudulent": ("fraudulent", "card_declined", "Your card was declined."),
    "pm_card_visa_chargeDeclinedVelocityLimitExceeded": (
        "card_velocity_exceeded",
        "card_declined",
        "Your card was declined for making repeated attempts too frequently or exceeding its "
        "amount limit.",
    ),
}


@pytest.fixture
def api(in_process: InProcessHarness) -> Any:
    return in_process.client.v1


def _open_invoice(api: Any, customer: Any, amount: int = 1200) -> Any:
    draft = api.invoices.create({"customer": customer.id, "auto_advance": False})
    api.invoice_items.create(
        {"customer": customer.id, "invoice": draft.id, "amount": amount, "currency": "usd"}
    )
    return api.invoices.finalize_invoice(draft.id)


def _saved_card(api: Any, token: str = "pm_card_visa", **customer: Any) -> tuple[Any, Any]:
    buyer = api.customers.create({"email": "card@example.com", **customer})
    card = api.payment_methods.attach(token, {"customer": buyer.id})
    api.customers.update(buyer.id, {"invoice_settings": {"default_payment_method": card.id}})
    return buyer, card


@pytest.mark.parametrize("token", sorted(DECLINING_CARDS))
def test_each_declining_test_card_is_refused_on_attach_and_on_pay(api: Any, token: str) -> None:
    decline_code, code, message = DECLINING_CARDS[token]
    buyer = api.customers.create({})
    with pytest.raises(stripe.CardError) as refused:
        api.payment_methods.attach(token, {"customer": buyer.id})
    assert refused.value.http_status == 402
    assert (refused.value.code, refused.value.error.decline_code) == (code, decline_code)
    assert refused.value.user_message == message
    assert api.payment_methods.list({"customer": buyer.id}).data == []

    buyer, _ = _saved_card(api)
    invoice = _open_invoice(api, buyer)
    with pytest.raises(stripe.CardError) as declined:
        api.invoices.pay(invoice.id, {"payment_method": token})
    assert (declined.value.code, declined.value.error.decline_code) == (code, decline_code)
    assert api.invoices.retrieve(invoice.id).status == "open"


@pytest.mark.parametrize("token", sorted(DECLINING_CARDS))
def test_a_saved_card_declining_with_a_code_records_it_on_the_charge_and_intent(
    api: Any, in_process: InProcessHarness, token: str
) -> None:
    decline_code, code, message = DECLINING_CARDS[token]
    buyer, card = _saved_card(api)
    in_process.emulator.card_behavior_set(card.id, decline_code=decline_code)
    invoice = _open_invoice(api, buyer)
    with pytest.raises(stripe.CardError) as declined:
        api.invoices.pay(invoice.id)
    assert (declined.value.code, declined.value.error.decline_code) == (code, decline_code)
    assert declined.value.user_message == message
    [charge] = api.charges.list({"customer": buyer.id}).data
    assert (charge.status, charge.failure_code, charge.failure_message) == ("failed", code, message)
    fraud = decline_code == "fraudulent"
    assert charge.outcome.reason == ("highest_risk_level" if fraud else decline_code)
    assert charge.outcome.type == ("blocked" if fraud else "issuer_declined")
    intent = api.payment_intents.retrieve(charge.payment_intent)
    assert intent.status == "requires_payment_method"
    error = intent.last_payment_error
    assert (error.code, error.decline_code, error.message) == (code, decline_code, message)
    assert api.invoices.retrieve(invoice.id).status == "open"


def test_each_declining_card_has_its_own_last4(api: Any) -> None:
    numbers = {}
    for token in DECLINING_CARDS:
        made = api.payment_methods.create(
            {"type": "card", "card": {"token": token.replace("pm_card_", "tok_")}}
        )
        numbers[token] = made.card.last4
    assert numbers["pm_card_chargeDeclinedExpiredCard"] == "0069"
    assert (
        numbers["pm_card_chargeDeclinedLostCard"]
        == numbers["pm_card_visa_chargeDeclinedLostCard"]
        == "9987"
    )
    assert len(set(numbers.values())) == len(DECLINING_CARDS) - 1  # one alias


def test_the_authentication_card_attaches(api: Any) -> None:
    buyer = api.customers.create({})
    card = api.payment_methods.attach("pm_card_authenticationRequired", {"customer": buyer.id})
    assert (card.customer, card.card.last4, card.card.brand) == (buyer.id, "3184", "visa")


def test_a_saved_card_set_to_decline_fails_every_later_charge(
    api: Any, in_process: InProcessHarness
) -> None:
    buyer, card = _saved_card(api)
    in_process.emulator.card_behavior_set(card.id, decline_code="expired_card")
    first, second = _open_invoice(api, buyer), _open_invoice(api, buyer, 800)
    for invoice in (first, second):
        with pytest.raises(stripe.CardError) as declined:
            api.invoices.pay(invoice.id)
        assert declined.value.code == "expired_card"
        assert declined.value.error.decline_code == "expired_card"
        assert declined.value.user_message == "Your card has expired."
    assert [c.status for c in api.charges.list({"customer": buyer.id}).data] == ["failed"] * 2

    in_process.emulator.card_behavior_set(card.id)  # succeeds again
    assert api.invoices.pay(first.id).status == "paid"


def test_reset_makes_even_a_failing_test_card_succeed(
    api: Any, in_process: InProcessHarness
) -> None:
    buyer, card = _saved_card(api, "pm_card_chargeCustomerFail")
    invoice = _open_invoice(api, buyer)
    with pytest.raises(stripe.CardError):
        api.invoices.pay(invoice.id)
    in_process.emulator.card_behavior_set(card.id)
    assert api.invoices.pay(invoice.id).status == "paid"


def test_a_renewal_with_a_card_lost_since_it_was_saved_fails(
    api: Any, in_process: InProcessHarness
) -> None:
    in_process.subscribe_webhooks()
    clock = api.test_helpers.test_clocks.create({"frozen_time": START})
    buyer, card = _saved_card(api, test_clock=clock.id)
    price = api.prices.create(
        {"product_data": {"name": "Plan"}, "currency": "usd", "unit_amount": 1500,
         "recurring": {"interval": "month"}}
    )  # fmt: skip
    subscription = api.subscriptions.create({"customer": buyer.id, "items": [{"price": price.id}]})
    in_process.emulator.card_behavior_set(card.id, decline_code="lost_card")
    period_end = subscription["items"].data[0].current_period_end
    advance_clock(api, clock.id, period_end + 60)  # the renewal's draft
    in_process.settle()  # its invoice.created acknowledged: it finalizes an hour later
    advance_clock(api, clock.id, period_end + 7200)
    renewal = api.invoices.list({"subscription": subscription.id}).data[0]
    assert (renewal.billing_reason, renewal.status) == ("subscription_cycle", "open")
    assert api.subscriptions.retrieve(subscription.id).status == "past_due"
    failed = [e for e in in_process.events() if e.type == "payment_intent.payment_failed"]
    assert failed[-1].data.object.last_payment_error.decline_code == "lost_card"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"decline_code": "no_such_code"}, "unknown decline_code 'no_such_code'"),
        ({"decline_code": "lost_card", "requires_action": True}, "not both"),
    ],
)
def test_a_bad_setting_is_refused_and_changes_nothing(
    api: Any, in_process: InProcessHarness, setting: dict[str, Any], message: str
) -> None:
    buyer, card = _saved_card(api)
    with pytest.raises(ValueError, match=message):
        in_process.emulator.card_behavior_set(card.id, **setting)
    assert api.invoices.pay(_open_invoice(api, buyer).id).status == "paid"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"decline_code": "no_such_code"}', "unknown decline_code"),
        ('{"decline": "lost_card"}', "unknown fields: decline"),
        ('{"requires_action": "yes"}', "requires_action is true or false"),
        ('{"decline_code": 5}', "decline_code is a string"),
        ("[]", "the body is a JSON object"),
        ("lost_card", "Expecting value"),
    ],
)
def test_a_bad_setting_over_the_control_endpoint_is_a_400(
    api: Any, in_process: InProcessHarness, body: str, message: str
) -> None:
    buyer, card = _saved_card(api)
    answer = in_process.http.dispatch(
        "POST", f"http://x/_emulator/payment_methods/{card.id}/charge_behavior", {}, body
    )
    assert answer.status == 400 and message in answer.json()["error"]["message"]
    assert api.invoices.pay(_open_invoice(api, buyer).id).status == "paid"


def test_an_unknown_payment_method_is_a_lookup_error(in_process: InProcessHarness) -> None:
    with pytest.raises(LookupError, match="pm_nope"):
        in_process.emulator.card_behavior_set("pm_nope", decline_code="lost_card")


def test_every_documented_decline_code_is_accepted(api: Any, in_process: InProcessHarness) -> None:
    buyer, card = _saved_card(api)
    for code in ("authentication_required", "do_not_honor", "pickup_card", "insufficient_funds"):
        assert code in DECLINE_CODES
        in_process.emulator.card_behavior_set(card.id, decline_code=code)
        with pytest.raises(stripe.CardError) as declined:
            api.invoices.pay(_open_invoice(api, buyer).id)
        assert declined.value.error.decline_code == code


def test_charge_behavior_over_http(server: RunningServer) -> None:
    v1 = http_client(server.url).v1
    buyer = v1.customers.create({})
    card = v1.payment_methods.attach("pm_card_visa", {"customer": buyer.id})
    control = f"{server.url}/_emulator/payment_methods/{card.id}/charge_behavior"

    answer = requests.post(control, json={"decline_code": "stolen_card"}, timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {
        "payment_method": card.id,
        "decline_code": "stolen_card",
        "requires_action": False,
    }
    invoice = v1.invoices.create({"customer": buyer.id, "auto_advance": False})
    v1.invoice_items.create(
        {"customer": buyer.id, "invoice": invoice.id, "amount": 300, "currency": "usd"}
    )
    with pytest.raises(stripe.CardError) as declined:
        v1.invoices.pay(invoice.id, {"payment_method": card.id})
    assert declined.value.error.decline_code == "stolen_card"

    assert requests.post(control, json={}, timeout=10).status_code == 200
    assert v1.invoices.pay(invoice.id, {"payment_method": card.id}).status == "paid"

    missing = requests.post(
        f"{server.url}/_emulator/payment_methods/pm_missing/charge_behavior", json={}, timeout=10
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No such PaymentMethod: 'pm_missing'"
    bad = requests.post(control, json={"decline_code": "nope"}, timeout=10)
    assert bad.status_code == 400 and "unknown decline_code" in bad.json()["error"]["message"]
    assert requests.post(control, data=b"not json", timeout=10).status_code == 400
