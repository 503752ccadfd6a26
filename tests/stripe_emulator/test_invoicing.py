"""Renewal invoicing as Stripe does it: pending items pulled into the renewal draft and
carried by ``invoice.created``; finalization an hour after the endpoints acknowledge that
event (72 hours at most); drafts edited one item at a time or in bulk, held with
``auto_advance=false``; ``invoice.upcoming`` before renewal; 250 invoice items per invoice;
the hosted page and the PDF of a finalized invoice. Driven in-process with stripe-python."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import stripe

from stripe_emulator import InProcessHTTPClient, emulator_in_process
from stripe_emulator.pdf import invoice_text

from .conftest import API_KEY, RunningServer, http_client

DAY = 86400
HOUR = 3600
START = 1_800_000_000


@dataclass
class Endpoint:
    """Our webhook endpoint: records every delivery and answers ``status``."""

    status: int = 200
    events: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, body: bytes, headers: dict[str, str]) -> int:
        self.events.append(json.loads(body))
        return self.status

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event["data"]["object"] for event in self.events if event["type"] == event_type]


@dataclass
class World:
    api: Any
    http: InProcessHTTPClient
    endpoint: Endpoint
    clock: Any = None
    customer: Any = None

    def advance(self, frozen_time: int) -> None:
        """Advance and poll until the clock is ready, as a client of Stripe must."""
        clock = self.api.test_helpers.test_clocks.advance(
            self.clock.id, {"frozen_time": frozen_time}
        )
        for _ in range(500):
            if clock.status == "ready":
                return
            time.sleep(0.01)
            clock = self.api.test_helpers.test_clocks.retrieve(self.clock.id)
        raise AssertionError(f"test clock still {clock.status}")

    def page(self, url: str, method: str = "GET", body: str = "") -> Any:
        return self.http.dispatch(method, url, {}, body)


def _world(*, listening: bool = True, status: int = 200) -> World:
    endpoint = Endpoint(status=status)
    emulator = emulator_in_process(endpoint)
    http = InProcessHTTPClient(emulator)
    api = stripe.StripeClient(API_KEY, http_client=http).v1
    world = World(api, http, endpoint)
    if listening:
        api.webhook_endpoints.create(
            {"url": "https://portal.example/hook", "enabled_events": ["*"]}
        )
    world.clock = api.test_helpers.test_clocks.create({"frozen_time": START})
    world.customer = api.customers.create(
        {"email": "usage@example.com", "name": "Usage Ltd", "test_clock": world.clock.id}
    )
    card = api.payment_methods.attach("pm_card_visa", {"customer": world.customer.id})
    api.customers.update(
        world.customer.id, {"invoice_settings": {"default_payment_method": card.id}}
    )
    return world


@pytest.fixture
def world() -> World:
    return _world()


def _subscribe(world: World, amount: int = 1000, **extra: Any) -> tuple[Any, int]:
    price = world.api.prices.create(
        {
            "product_data": {"name": "Pro"},
            "currency": "usd",
            "unit_amount": amount,
            "recurring": {"interval": "month"},
        }
    )
    subscription = world.api.subscriptions.create(
        {"customer": world.customer.id, "items": [{"price": price.id}], **extra}
    )
    return subscription, subscription["items"].data[0].current_period_end


def _item(world: World, amount: int, **extra: Any) -> Any:
    return world.api.invoice_items.create(
        {"customer": world.customer.id, "amount": amount, "currency": "usd", **extra}
    )


def _latest(world: World, subscription: Any) -> Any:
    return world.api.invoices.retrieve(
        world.api.subscriptions.retrieve(subscription.id).latest_invoice
    )


def _error(call: Any) -> stripe.StripeError:
    with pytest.raises(stripe.StripeError) as raised:
        call()
    return raised.value


# Pending items and invoice.created ------------------------------------------------------


def test_renewal_pulls_the_subscriptions_and_the_customers_pending_items(world: World) -> None:
    subscription, end = _subscribe(world)
    world.advance(START + DAY)  # the other plan renews a day later
    other, _ = _subscribe(world, amount=500)
    usage = _item(world, 250, subscription=subscription.id, description="API calls")
    loose = _item(world, 100, description="Support hour")
    elsewhere = _item(world, 70, subscription=other.id, description="Other plan's usage")
    dropped = _item(world, 999, subscription=subscription.id)
    # Until the renewal they are pending: updated and deleted freely.
    world.api.invoice_items.update(usage.id, {"amount": 300})
    assert world.api.invoice_items.delete(dropped.id).deleted is True

    world.advance(end + 60)
    draft = _latest(world, subscription)
    assert (draft.status, draft.billing_reason) == ("draft", "subscription_cycle")
    created = next(i for i in world.endpoint.of_type("invoice.created") if i["id"] == draft.id)
    items = {
        line["parent"]["invoice_item_details"]["invoice_item"]: line["amount"]
        for line in created["lines"]["data"]
        if line["parent"]["type"] == "invoice_item_details"
    }
    assert items == {usage.id: 300, loose.id: 100}  # the event carries them
    assert created["total"] == 1000 + 300 + 100
    assert world.api.invoice_items.retrieve(elsewhere.id).invoice is None  # the other plan's
    assert world.api.invoice_items.retrieve(usage.id).invoice == draft.id

    # On the draft they can still change, and the line keeps its id.
    line_id = next(ln.id for ln in draft.lines.data if ln.description == "API calls")
    world.api.invoice_items.update(usage.id, {"amount": 450})
    draft = world.api.invoices.retrieve(draft.id)
    assert (draft.total, [ln.id for ln in draft.lines.data if ln.amount == 450]) == (
        1550,
        [line_id],
    )

    world.advance(end + 2 * HOUR)
    assert world.api.invoices.retrieve(draft.id).status == "paid"
    refused = _error(lambda: world.api.invoice_items.update(usage.id, {"amount": 1}))
    assert refused.http_status == 400
    assert "only possible while it is pending or on a draft" in refused.user_message
    assert _error(lambda: world.api.invoice_items.delete(usage.id)).http_status == 400
    assert world.api.invoice_items.retrieve(usage.id).amount == 450


# The hour after acknowledgement ---------------------------------------------------------


def test_the_draft_finalizes_an_hour_after_our_endpoint_acknowledged_it(world: World) -> None:
    subscription, end = _subscribe(world)
    world.advance(end + 10 * 60)  # the draft is created at `end`; acknowledged at end + 10 min
    draft = _latest(world, subscription)
    assert draft.status == "draft"
    assert draft.automatically_finalizes_at == end + 10 * 60 + HOUR
    assert draft.webhooks_delivered_at == end + 10 * 60

    world.advance(end + 10 * 60 + HOUR - 1)
    assert world.api.invoices.retrieve(draft.id).status == "draft"
    world.advance(end + 10 * 60 + HOUR + 1)
    paid = world.api.invoices.retrieve(draft.id)
    assert (paid.status, paid.amount_paid) == ("paid", 1000)
    assert paid.status_transitions.finalized_at == end + 10 * 60 + HOUR


def test_without_an_acknowledgement_the_draft_waits_72_hours() -> None:
    world = _world(status=500)
    subscription, end = _subscribe(world)
    world.advance(end + HOUR)
    draft = _latest(world, subscription)
    assert draft.automatically_finalizes_at == end + 72 * HOUR
    assert draft.webhooks_delivered_at is None
    world.advance(end + 71 * HOUR)
    assert world.api.invoices.retrieve(draft.id).status == "draft"
    world.advance(end + 73 * HOUR)
    assert world.api.invoices.retrieve(draft.id).status == "paid"


def test_with_no_endpoint_listening_the_draft_finalizes_an_hour_after_creation() -> None:
    world = _world(listening=False)
    subscription, end = _subscribe(world)
    world.advance(end + 2 * HOUR)  # one advance: nothing to wait for
    invoice = _latest(world, subscription)
    assert (invoice.status, invoice.status_transitions.finalized_at) == ("paid", end + HOUR)


# Editing a draft -------------------------------------------------------------------------


def test_a_held_draft_is_edited_in_bulk_then_finalized_and_paid(world: World) -> None:
    subscription, end = _subscribe(world)
    usage = _item(world, 200, subscription=subscription.id, description="API calls")
    world.advance(end + 60)
    draft = _latest(world, subscription)
    held = world.api.invoices.update(draft.id, {"auto_advance": False})
    assert (held.auto_advance, held.automatically_finalizes_at) == (False, None)

    spare = _item(world, 40, description="Reassigned")
    world.api.invoice_items.update(spare.id, {"metadata": {"k": "v"}})
    price = world.api.prices.create(
        {"product_data": {"name": "Block"}, "currency": "usd", "unit_amount": 125}
    )
    added = world.api.invoices.add_lines(
        draft.id,
        {
            "lines": [
                {"amount": 7500, "description": "Projects held", "metadata": {"line": "p"}},
                {"pricing": {"price": price.id}, "quantity": 2, "description": "Blocks"},
                {"invoice_item": spare.id},
            ],
            "invoice_metadata": {"synced": "1"},
        },
    )
    assert added.total == 1000 + 200 + 7500 + 250 + 40
    assert added.metadata.to_dict() == {"synced": "1"}
    assert world.api.invoice_items.retrieve(spare.id).invoice == draft.id

    by_text = {line.description: line for line in added.lines.data}
    updated = world.api.invoices.update_lines(
        draft.id,
        {
            "lines": [
                {"id": by_text["API calls"].id, "amount": 260},
                {"id": by_text["Blocks"].id, "quantity": 3},
            ]
        },
    )
    assert world.api.invoice_items.retrieve(usage.id).amount == 260
    assert updated.total == 1000 + 260 + 7500 + 375 + 40
    assert {line.id for line in updated.lines.data} == {line.id for line in added.lines.data}

    removed = world.api.invoices.remove_lines(
        draft.id,
        {
            "lines": [
                {"id": by_text["Projects held"].id, "behavior": "delete"},
                {"id": by_text["Reassigned"].id, "behavior": "unassign"},
            ]
        },
    )
    assert removed.total == 1000 + 260 + 375
    assert world.api.invoice_items.retrieve(spare.id).invoice is None  # pending again
    projects = by_text["Projects held"].parent.invoice_item_details.invoice_item
    assert _error(lambda: world.api.invoice_items.retrieve(projects)).http_status == 404

    world.advance(end + 5 * DAY)  # held: no finalization however long
    assert world.api.invoices.retrieve(draft.id).status == "draft"
    finalized = world.api.invoices.finalize_invoice(draft.id, {"auto_advance": False})
    assert (finalized.status, finalized.amount_due) == ("open", 1635)  # waits for `pay`
    paid = world.api.invoices.pay(draft.id)
    assert (paid.status, paid.amount_paid) == ("paid", 1635)
    types = [event["type"] for event in world.endpoint.events]
    assert "invoice.updated" in types and "invoiceitem.deleted" in types


def test_finalizing_an_advancing_draft_charges_it(world: World) -> None:
    subscription, end = _subscribe(world)
    world.advance(end + 60)
    draft = _latest(world, subscription)
    world.api.invoices.update(draft.id, {"auto_advance": False})
    finalized = world.api.invoices.finalize_invoice(draft.id, {"auto_advance": True})
    assert (finalized.status, finalized.amount_paid) == ("paid", 1000)


def test_turning_auto_advance_back_on_schedules_the_finalization(world: World) -> None:
    subscription, end = _subscribe(world)
    world.advance(end + 60)
    draft = _latest(world, subscription)
    world.api.invoices.update(draft.id, {"auto_advance": False})
    world.advance(end + DAY)
    resumed = world.api.invoices.update(draft.id, {"auto_advance": True})
    assert resumed.automatically_finalizes_at == end + DAY + HOUR
    world.advance(end + DAY + 2 * HOUR)
    assert world.api.invoices.retrieve(draft.id).status == "paid"


def test_only_drafts_accept_line_changes_and_a_refusal_changes_nothing(world: World) -> None:
    invoice = world.api.invoices.create({"customer": world.customer.id})
    _item(world, 500, invoice=invoice.id)
    line = world.api.invoices.retrieve(invoice.id).lines.data[0]
    world.api.invoices.finalize_invoice(invoice.id)
    for call in (
        lambda: world.api.invoices.add_lines(invoice.id, {"lines": [{"amount": 1}]}),
        lambda: world.api.invoices.update_lines(
            invoice.id, {"lines": [{"id": line.id, "amount": 1}]}
        ),
        lambda: world.api.invoices.remove_lines(
            invoice.id, {"lines": [{"id": line.id, "behavior": "delete"}]}
        ),
    ):
        error = _error(call)
        assert (error.http_status, error.param) == (400, "invoice")
        assert "only modify the lines of a draft invoice" in error.user_message
    error = _error(lambda: _item(world, 5, invoice=invoice.id))
    assert "only add invoice items to draft invoices" in error.user_message
    assert world.api.invoices.retrieve(invoice.id).total == 500


def test_bulk_line_errors_name_the_line_and_keep_the_draft_as_it_was(world: World) -> None:
    draft = world.api.invoices.create({"customer": world.customer.id})
    stranger = world.api.customers.create({"email": "other@example.com"})
    theirs = world.api.invoice_items.create(
        {"customer": stranger.id, "amount": 10, "currency": "usd"}
    )
    assigned = _item(world, 20, invoice=draft.id)
    euros = _item(world, 30, currency="eur")
    euro_price = world.api.prices.create(
        {"product_data": {"name": "Euro block"}, "currency": "eur", "unit_amount": 100}
    )
    cases = [
        ([{"amount": 100}, {"description": "no amount"}], "lines[1][amount]", "Missing required"),
        ([{"amount": 100}, {"invoice_item": theirs.id}], "lines[1][invoice_item]", "another"),
        ([{"invoice_item": assigned.id}], "lines[0][invoice_item]", "already on invoice"),
        ([{"invoice_item": euros.id}], "lines[0][invoice_item]", "currency"),
        ([{"amount": 5, "currency": "eur"}], "lines[0][currency]", "currency"),
        ([{"amount": 5, "tax_rates": ["txr_1"]}], "lines[0][tax_rates]", "not emulated"),
        ([{"invoice_item": "ii_missing"}], "lines[0][invoice_item]", "No such invoiceitem"),
        ([{"pricing": {"price": euro_price.id}}], "lines[0][currency]", "currency"),
        ([{"pricing": {"price": "price_missing"}}], "lines[0][pricing][price]", "No such price"),
    ]
    for lines, param, text in cases:
        error = _error(lambda lines=lines: world.api.invoices.add_lines(draft.id, {"lines": lines}))
        assert error.http_status == (404 if "No such" in text else 400)
        assert error.param == param and text in error.user_message, (param, error.user_message)
    unchanged = world.api.invoices.retrieve(draft.id)
    assert [line.amount for line in unchanged.lines.data] == [20]
    assert len(world.api.invoice_items.list({"customer": world.customer.id}).data) == 2

    error = _error(
        lambda: world.api.invoices.update_lines(draft.id, {"lines": [{"id": "il_x", "amount": 1}]})
    )
    assert (error.http_status, error.param) == (400, "lines[0][id]")
    line = unchanged.lines.data[0]
    error = _error(
        lambda: world.api.invoices.remove_lines(
            draft.id, {"lines": [{"id": line.id, "behavior": "shred"}]}
        )
    )
    assert (error.http_status, error.param) == (400, "lines[0][behavior]")
    error = _error(
        lambda: world.api.invoices.update_lines(
            draft.id, {"lines": [{"id": line.id, "pricing": {"price": euro_price.id}}]}
        )
    )
    assert (error.http_status, error.param) == (400, "lines[0][pricing]")
    assert [ln.amount for ln in world.api.invoices.retrieve(draft.id).lines.data] == [20]


def test_a_subscription_items_line_cannot_be_removed_or_repriced(world: World) -> None:
    subscription, end = _subscribe(world)
    world.advance(end + 60)
    draft = _latest(world, subscription)
    plan_line = draft.lines.data[0]
    assert plan_line.parent.type == "subscription_item_details"
    error = _error(
        lambda: world.api.invoices.remove_lines(
            draft.id, {"lines": [{"id": plan_line.id, "behavior": "delete"}]}
        )
    )
    assert (error.http_status, error.param) == (400, "lines[0][id]")
    error = _error(
        lambda: world.api.invoices.update_lines(
            draft.id, {"lines": [{"id": plan_line.id, "amount": 1}]}
        )
    )
    assert error.param == "lines[0][amount]"
    relabelled = world.api.invoices.update_lines(
        draft.id, {"lines": [{"id": plan_line.id, "metadata": {"plan": "pro"}}]}
    )
    assert relabelled.lines.data[0].metadata.to_dict() == {"plan": "pro"}
    assert relabelled.total == 1000


# The 250 invoice items of one invoice ---------------------------------------------------


def test_an_invoice_holds_at_most_250_invoice_items(world: World) -> None:
    draft = world.api.invoices.create({"customer": world.customer.id})
    for batch in (100, 100, 50):
        world.api.invoices.add_lines(draft.id, {"lines": [{"amount": 1}] * batch})
    assert world.api.invoices.retrieve(draft.id).total == 250
    error = _error(lambda: world.api.invoices.add_lines(draft.id, {"lines": [{"amount": 1}]}))
    assert (error.http_status, error.param) == (400, "lines")
    assert "at most 250 invoice items" in error.user_message
    error = _error(lambda: _item(world, 1, invoice=draft.id))
    assert (error.http_status, error.param) == (400, "invoice")
    assert world.api.invoice_items.list({"customer": world.customer.id, "pending": True}).data == []


def test_a_renewal_takes_the_oldest_250_pending_items_and_leaves_the_rest(world: World) -> None:
    subscription, end = _subscribe(world)
    items = [_item(world, 1, subscription=subscription.id) for _ in range(253)]
    world.advance(end + 60)
    draft = _latest(world, subscription)
    assert world.api.invoices.line_items.list(draft.id, {"limit": 1}).has_more
    assert draft.total == 1000 + 250
    left = world.api.invoice_items.list({"customer": world.customer.id, "pending": True}).data
    assert sorted(i.id for i in left) == sorted(i.id for i in items[-3:])


# invoice.upcoming ------------------------------------------------------------------------


def test_invoice_upcoming_goes_out_seven_days_before_the_renewal(world: World) -> None:
    subscription, end = _subscribe(world)
    _item(world, 300, subscription=subscription.id, description="API calls")
    world.advance(end - 7 * DAY - 60)
    assert world.endpoint.of_type("invoice.upcoming") == []
    world.advance(end - 7 * DAY + 60)
    world.advance(end - DAY)  # once per period
    (upcoming,) = world.endpoint.of_type("invoice.upcoming")
    assert upcoming["id"] is None  # "The received Invoice object will not have an invoice ID"
    assert upcoming["billing_reason"] == "upcoming"
    assert upcoming["parent"]["subscription_details"]["subscription"] == subscription.id
    assert sorted(line["amount"] for line in upcoming["lines"]["data"]) == [300, 1000]
    assert upcoming["total"] == 1300

    world.advance(end + 60)  # the next period's notice comes a month later
    next_end = world.api.subscriptions.retrieve(subscription.id)["items"].data[0]
    world.advance(next_end.current_period_end - 6 * DAY)
    assert len(world.endpoint.of_type("invoice.upcoming")) == 2


def test_no_invoice_upcoming_for_a_subscription_ending_at_the_period_end(world: World) -> None:
    subscription, end = _subscribe(world)
    world.api.subscriptions.update(subscription.id, {"cancel_at_period_end": True})
    world.advance(end - DAY)
    assert world.endpoint.of_type("invoice.upcoming") == []


# The hosted page and the PDF -------------------------------------------------------------


def test_a_finalized_invoice_has_a_hosted_page_and_a_pdf(world: World) -> None:
    draft = world.api.invoices.create({"customer": world.customer.id})
    assert (draft.hosted_invoice_url, draft.invoice_pdf) == (None, None)
    assert world.page(f"http://stripe-emulator.local/invoice/{draft.id}").status == 404
    world.api.invoices.add_lines(
        draft.id,
        {
            "lines": [
                {"amount": 123456, "description": "API calls (over 100,000)"},
                {"amount": 250, "description": "Extra project (20 days)"},
            ]
        },
    )
    invoice = world.api.invoices.finalize_invoice(draft.id)

    page = world.page(invoice.hosted_invoice_url)
    text = page.body.decode()
    assert page.status == 200
    assert f"Invoice {invoice.number}" in text and "Local Stripe emulator" in text
    assert "API calls (over 100,000)" in text and "1237.06 USD" in text
    assert invoice.invoice_pdf in text
    assert 'name="payment_method"' in text  # open: the card form
    paid = world.page(invoice.hosted_invoice_url, "POST", "payment_method=pm_card_visa")
    assert paid.status == 200 and "paid" in paid.body.decode()
    assert 'name="payment_method"' not in paid.body.decode()

    pdf = world.page(invoice.invoice_pdf)
    assert (pdf.status, pdf.headers["Content-Type"]) == (200, "application/pdf")
    _assert_valid_pdf(pdf.body)
    body = pdf.body.decode("latin-1")
    for expected in (f"Invoice {invoice.number}", "Extra project \\(20 days\\)", "1237.06 USD"):
        assert expected in body, expected
    assert "Stripe, Inc" not in body and "Local Stripe emulator" in body
    assert world.page(invoice.invoice_pdf.replace("/pdf", "/other")).status == 404


def test_a_long_invoice_pdf_runs_over_several_pages(world: World) -> None:
    draft = world.api.invoices.create({"customer": world.customer.id})
    world.api.invoices.add_lines(
        draft.id, {"lines": [{"amount": 100, "description": f"Line {i}"} for i in range(95)]}
    )
    invoice = world.api.invoices.finalize_invoice(draft.id)
    pdf = world.page(invoice.invoice_pdf).body
    _assert_valid_pdf(pdf)
    assert b"/Count 3" in pdf and b"(Page 3 of 3) Tj" in pdf
    _header, rows, totals = invoice_text(world.api.invoices.retrieve(invoice.id).to_dict())
    assert len(rows) == 95 and "Total: 95.00 USD" in totals


def _assert_valid_pdf(pdf: bytes) -> None:
    """Header, trailer, and a cross-reference table whose offsets point at the objects."""
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\n(\d+)\n%%EOF", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[startxref:].startswith(b"xref\n0 ")
    count = int(pdf[startxref:].split(b"\n")[1].split()[1])
    entries = pdf[startxref:].split(b"\n")[3 : 3 + count - 1]
    for number, entry in enumerate(entries, start=1):
        offset = int(entry.split()[0])
        assert pdf[offset:].startswith(f"{number} 0 obj".encode()), number
    for match in re.finditer(rb"<< /Length (\d+) >>\nstream\n", pdf):
        end = match.end() + int(match.group(1))
        assert pdf[end:].startswith(b"\nendstream")


def test_a_one_off_invoice_with_auto_advance_finalizes_like_a_renewal(world: World) -> None:
    _item(world, 900)
    invoice = world.api.invoices.create(
        {
            "customer": world.customer.id,
            "auto_advance": True,
            "pending_invoice_items_behavior": "include",
        }
    )
    created = world.endpoint.of_type("invoice.created")[-1]
    assert created["total"] == 900  # the pending item is on it when announced
    assert world.api.invoices.retrieve(invoice.id).automatically_finalizes_at == START + HOUR
    world.advance(START + HOUR + 1)
    assert world.api.invoices.retrieve(invoice.id).status == "paid"


def test_a_finalization_time_of_ones_own_does_not_wait_for_webhooks() -> None:
    world = _world(status=500)
    _item(world, 900)
    invoice = world.api.invoices.create(
        {
            "customer": world.customer.id,
            "auto_advance": True,
            "pending_invoice_items_behavior": "include",
            "automatically_finalizes_at": START + 2 * HOUR,
        }
    )
    assert invoice.automatically_finalizes_at == START + 2 * HOUR
    world.advance(START + 2 * HOUR + 1)
    assert world.api.invoices.retrieve(invoice.id).status == "paid"
    error = _error(
        lambda: world.api.invoices.create(
            {"customer": world.customer.id, "automatically_finalizes_at": START + DAY}
        )
    )
    assert (error.http_status, error.param) == (400, "automatically_finalizes_at")


def test_the_pdf_and_page_over_http(server: RunningServer) -> None:
    api = http_client(server.url).v1
    customer = api.customers.create({"email": "http@example.com"})
    draft = api.invoices.create({"customer": customer.id})
    api.invoices.add_lines(draft.id, {"lines": [{"amount": 4200, "description": "Usage"}]})
    invoice = api.invoices.finalize_invoice(draft.id)
    assert invoice.invoice_pdf == f"{server.url}/invoice/{invoice.id}/pdf"
    pdf = requests.get(invoice.invoice_pdf, timeout=10)
    assert (pdf.status_code, pdf.headers["Content-Type"]) == (200, "application/pdf")
    _assert_valid_pdf(pdf.content)
    assert b"42.00 USD" in pdf.content
    page = requests.get(invoice.hosted_invoice_url, timeout=10)
    assert page.status_code == 200 and "Usage" in page.text and invoice.invoice_pdf in page.text
