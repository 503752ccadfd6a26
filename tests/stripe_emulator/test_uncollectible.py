"""Invoices written off (``uncollectible``) can still be paid; a detached card is not
charged as a default."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from .conftest import InProcessHarness


@pytest.fixture
def api(in_process: InProcessHarness) -> Any:
    return in_process.client.v1


def _open_invoice(api: Any, token: str = "pm_card_chargeCustomerFail") -> tuple[Any, Any]:
    buyer = api.customers.create({"email": "late@example.com"})
    card = api.payment_methods.attach(token, {"customer": buyer.id})
    api.customers.update(buyer.id, {"invoice_settings": {"default_payment_method": card.id}})
    draft = api.invoices.create({"customer": buyer.id, "auto_advance": False})
    api.invoice_items.create(
        {"customer": buyer.id, "invoice": draft.id, "amount": 1100, "currency": "usd"}
    )
    return buyer, api.invoices.finalize_invoice(draft.id)


def test_an_uncollectible_invoice_can_still_be_paid(api: Any, in_process: InProcessHarness) -> None:
    in_process.subscribe_webhooks()
    _buyer, invoice = _open_invoice(api)
    written_off = api.invoices.mark_uncollectible(invoice.id)
    assert (written_off.status, written_off.next_payment_attempt) == ("uncollectible", None)
    assert written_off.status_transitions.marked_uncollectible_at is not None
    [event] = [e for e in in_process.events() if e.type == "invoice.marked_uncollectible"]
    assert event.data.object.status == "uncollectible"
    assert event.data.previous_attributes["status"] == "open"

    with pytest.raises(stripe.CardError):  # its own card still declines
        api.invoices.pay(invoice.id)
    assert api.invoices.retrieve(invoice.id).status == "uncollectible"
    page = in_process.http.dispatch("GET", invoice.hosted_invoice_url, {})
    assert b"Amount due: 11.00 USD" in page.body
    paid = in_process.http.dispatch(
        "POST", invoice.hosted_invoice_url, {}, "payment_method=pm_card_visa"
    )
    assert paid.status == 200 and b"is paid" in paid.body
    assert api.invoices.retrieve(invoice.id).status == "paid"
    with pytest.raises(stripe.InvalidRequestError) as again:
        api.invoices.pay(invoice.id)
    assert again.value.user_message == "Invoice is already paid"
    assert again.value.code is None


def test_an_uncollectible_invoice_can_be_voided(api: Any) -> None:
    _buyer, invoice = _open_invoice(api)
    api.invoices.mark_uncollectible(invoice.id)
    assert api.invoices.void_invoice(invoice.id).status == "void"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        api.invoices.pay(invoice.id)
    assert refused.value.user_message == "Voided invoices cannot be paid."


def test_a_detached_default_is_skipped_for_the_next_default(api: Any) -> None:
    buyer, _invoice = _open_invoice(api, "pm_card_visa")
    visa = api.customers.retrieve(buyer.id).invoice_settings.default_payment_method
    mastercard = api.payment_methods.attach("pm_card_mastercard", {"customer": buyer.id})
    draft = api.invoices.create(
        {"customer": buyer.id, "auto_advance": False, "default_payment_method": mastercard.id}
    )
    api.invoice_items.create(
        {"customer": buyer.id, "invoice": draft.id, "amount": 500, "currency": "usd"}
    )
    api.invoices.finalize_invoice(draft.id)
    api.payment_methods.detach(mastercard.id)  # the invoice's own default is gone
    assert api.invoices.pay(draft.id).status == "paid"
    [payment] = api.invoice_payments.list({"invoice": draft.id}).data
    charged = api.payment_intents.retrieve(payment.payment.payment_intent).payment_method
    assert charged == visa
