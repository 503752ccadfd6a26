"""Must-show 5: idempotency keys and every kind of injected fault."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from .conftest import API_KEY, InProcessHarness, Receiver, RunningServer, http_client, start_server

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def add_fault(server: RunningServer, **spec: object) -> None:
    answer = requests.post(f"{server.url}/_emulator/faults", json=spec, timeout=5)
    assert answer.status_code == 200, answer.text


# Idempotency -------------------------------------------------------------------------------


def test_same_key_same_parameters_replays_the_first_answer(server: RunningServer) -> None:
    client = http_client(server.url)
    first = client.v1.customers.create(
        {"email": "once@example.com"}, {"idempotency_key": "signup-1"}
    )
    again = client.v1.customers.create(
        {"email": "once@example.com"}, {"idempotency_key": "signup-1"}
    )
    assert again.id == first.id
    assert len(client.v1.customers.list({"email": "once@example.com"}).data) == 1
    raw = requests.post(
        f"{server.url}/v1/customers",
        data={"email": "once@example.com"},
        headers={**AUTH, "Idempotency-Key": "signup-1"},
        timeout=5,
    )
    assert raw.headers["Idempotent-Replayed"] == "true"
    assert raw.json()["id"] == first.id


def test_same_key_other_parameters_is_an_idempotency_error(server: RunningServer) -> None:
    client = http_client(server.url)
    client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k-1"})
    with pytest.raises(stripe.IdempotencyError) as error:
        client.v1.customers.create({"email": "b@example.com"}, {"idempotency_key": "k-1"})
    assert error.value.http_status == 400
    assert "k-1" in error.value.user_message


def test_errors_are_replayed_but_validation_failures_are_not_saved(server: RunningServer) -> None:
    client = http_client(server.url)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create({"emial": "typo"}, {"idempotency_key": "k-2"})  # type: ignore[typeddict-unknown-key]
    assert (
        client.v1.customers.create({"email": "fixed@example.com"}, {"idempotency_key": "k-2"}).email
        == "fixed@example.com"
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.create(
            {"customer": "cus_missing", "items": [{"price": "p"}]}, {"idempotency_key": "k-3"}
        )
    with pytest.raises(stripe.InvalidRequestError) as replayed:
        client.v1.subscriptions.create(
            {"customer": "cus_missing", "items": [{"price": "p"}]}, {"idempotency_key": "k-3"}
        )
    assert replayed.value.headers["Idempotent-Replayed"] == "true"


def test_idempotency_keys_survive_a_restart(tmp_path: Path) -> None:
    first = start_server(tmp_path / "state")
    created = http_client(first.url).v1.customers.create(
        {"email": "k@example.com"}, {"idempotency_key": "restart"}
    )
    first.stop()
    second = start_server(tmp_path / "state")
    try:
        again = http_client(second.url).v1.customers.create(
            {"email": "k@example.com"}, {"idempotency_key": "restart"}
        )
        assert again.id == created.id
    finally:
        second.stop()


def test_keys_are_scoped_to_the_api_key(in_process: InProcessHarness) -> None:
    other = stripe.StripeClient("sk_test_another000000000000000000", http_client=in_process.http)
    one = in_process.client.v1.customers.create({}, {"idempotency_key": "shared"})
    two = other.v1.customers.create({}, {"idempotency_key": "shared"})
    assert one.id != two.id


# Request faults ---------------------------------------------------------------------------


def test_500_for_the_next_matching_requests_then_normal(server: RunningServer) -> None:
    add_fault(server, kind="error_500", count=1, method="POST", path="/v1/customers")
    client = http_client(server.url)
    with pytest.raises(stripe.APIError) as error:
        client.v1.customers.create({"email": "a@example.com"})
    assert error.value.http_status == 500
    assert client.v1.customers.list().data == []  # the failed request changed nothing
    client.v1.customers.create({"email": "a@example.com"})


def test_stripe_python_retries_a_500_with_the_same_idempotency_key(server: RunningServer) -> None:
    add_fault(server, kind="error_500", count=1, path="/v1/customers")
    client = http_client(server.url, max_network_retries=2)
    customer = client.v1.customers.create({"email": "retried@example.com"})
    assert client.v1.customers.list().data[0].id == customer.id


def test_429_rate_limit(server: RunningServer) -> None:
    add_fault(server, kind="error_429", count=2, path="/v1/customers")
    client = http_client(server.url)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as error:
            client.v1.customers.list()
        assert error.value.json_body["error"]["code"] == "rate_limit"
    assert client.v1.customers.list().data == []


def test_timeout_fault_hangs_past_the_client_timeout(server: RunningServer) -> None:
    add_fault(server, kind="timeout", count=1, path="/v1/customers", seconds=1.0)
    client = stripe.StripeClient(
        API_KEY,
        base_addresses={"api": server.url},
        http_client=stripe.RequestsClient(timeout=0.3),
        max_network_retries=0,
    )
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create({"email": "slow@example.com"})
    assert http_client(server.url).v1.customers.list().data == []


def test_timeout_fault_in_process(in_process: InProcessHarness) -> None:
    in_process.emulator.faults.add({"kind": "timeout", "count": 1})
    with pytest.raises(stripe.APIConnectionError):
        in_process.client.v1.customers.list()
    assert in_process.client.v1.customers.list().data == []


def test_faults_match_method_and_path_and_can_be_cleared(server: RunningServer) -> None:
    add_fault(server, kind="error_500", count=5, method="DELETE", path="/v1/customers")
    client = http_client(server.url)
    customer = client.v1.customers.create({})  # a POST is not matched
    assert requests.get(f"{server.url}/_emulator/faults", timeout=5).json()["data"][0]["count"] == 5
    assert requests.delete(f"{server.url}/_emulator/faults", timeout=5).json()["data"] == []
    assert client.v1.customers.delete(customer.id).deleted is True
    bad = requests.post(f"{server.url}/_emulator/faults", json={"kind": "meteor"}, timeout=5)
    assert bad.status_code == 400


# Webhook faults ---------------------------------------------------------------------------


def _received_types(receiver: Receiver) -> list[str]:
    return [json.loads(body)["type"] for body, _ in receiver.deliveries]


def _product_events(server: RunningServer, receiver: Receiver, count: int) -> list[str]:
    client = http_client(server.url)
    client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["product.created"]})
    return [client.v1.products.create({"name": f"P{i}"}).id for i in range(count)]


def _received_products(receiver: Receiver) -> list[str]:
    return [json.loads(body)["data"]["object"]["id"] for body, _ in receiver.deliveries]


def test_duplicate_deliveries(server: RunningServer, receiver: Receiver) -> None:
    add_fault(server, kind="webhook_duplicate", count=1)
    products = _product_events(server, receiver, 2)
    assert server.emulator.webhooks.wait_idle(5)
    assert sorted(_received_products(receiver)) == sorted([products[0], products[0], products[1]])
    ids = receiver.event_ids()
    assert len(ids) == 3 and len(set(ids)) == 2


def test_out_of_order_deliveries(server: RunningServer, receiver: Receiver) -> None:
    add_fault(server, kind="webhook_out_of_order", count=3)
    products = _product_events(server, receiver, 3)
    assert server.emulator.webhooks.wait_idle(5)
    assert _received_products(receiver) == list(reversed(products))


def test_late_deliveries(server: RunningServer, receiver: Receiver) -> None:
    add_fault(server, kind="webhook_late", count=1, seconds=0.5)
    started = time.monotonic()
    products = _product_events(server, receiver, 2)
    time.sleep(0.25)
    assert _received_products(receiver) == [products[1]]
    assert server.emulator.webhooks.wait_idle(5)
    assert _received_products(receiver) == [products[1], products[0]]
    assert time.monotonic() - started >= 0.5


# timeout_after_commit: done and saved, the answer lost ------------------------------------


def _open_invoice(v1: Any, amount: int = 900) -> tuple[str, str]:
    customer = v1.customers.create({"email": "lost-answer@example.com"})
    card = v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    draft = v1.invoices.create(
        {"customer": customer.id, "auto_advance": False, "default_payment_method": card.id}
    )
    v1.invoice_items.create(
        {"customer": customer.id, "invoice": draft.id, "amount": amount, "currency": "usd"}
    )
    return customer.id, v1.invoices.finalize_invoice(draft.id).id


def test_timeout_after_commit_in_process_keeps_the_payment_and_replays_it(
    in_process: InProcessHarness,
) -> None:
    in_process.subscribe_webhooks()
    v1 = in_process.client.v1
    customer, invoice = _open_invoice(v1)
    in_process.emulator.faults.add(
        {"kind": "timeout_after_commit", "count": 1, "method": "POST", "path": "/v1/invoices/"}
    )
    with pytest.raises(stripe.APIConnectionError):
        v1.invoices.pay(invoice, options={"idempotency_key": "pay-once"})
    # The payment happened and its events went out, though the answer never arrived.
    assert v1.invoices.retrieve(invoice).status == "paid"
    assert "invoice.paid" in [event.type for event in in_process.events()]

    again = v1.invoices.pay(invoice, options={"idempotency_key": "pay-once"})
    assert again.status == "paid"
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert [c.status for c in v1.charges.list({"customer": customer}).data] == ["succeeded"]
    # Without the key, paying again is a new request: Stripe refuses a paid invoice.
    with pytest.raises(stripe.InvalidRequestError):
        v1.invoices.pay(invoice)


def test_timeout_after_commit_only_matches_its_method_and_path(
    in_process: InProcessHarness,
) -> None:
    v1 = in_process.client.v1
    _customer, invoice = _open_invoice(v1)
    in_process.emulator.faults.add(
        {"kind": "timeout_after_commit", "method": "POST", "path": "/v1/invoices/"}
    )
    v1.invoices.retrieve(invoice)  # a GET is not matched
    v1.customers.create({})  # nor another path
    with pytest.raises(stripe.APIConnectionError):
        v1.invoices.update(invoice, {"metadata": {"note": "kept"}})
    assert in_process.emulator.faults.listing() == []  # count 1: used up
    assert v1.invoices.retrieve(invoice).metadata.to_dict() == {"note": "kept"}
    with pytest.raises(stripe.APIConnectionError):  # a refusal's answer is lost too
        in_process.emulator.faults.add({"kind": "timeout_after_commit"})
        v1.invoices.finalize_invoice(invoice)
    with pytest.raises(stripe.InvalidRequestError):
        v1.invoices.finalize_invoice(invoice)


def test_timeout_after_commit_over_http_drops_the_connection_after_seconds(
    server: RunningServer, receiver: Receiver
) -> None:
    v1 = http_client(server.url).v1
    v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["invoice.paid"]})
    customer, invoice = _open_invoice(v1)
    add_fault(
        server,
        kind="timeout_after_commit",
        count=1,
        method="POST",
        path="/v1/invoices/",
        seconds=0.3,
    )
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        v1.invoices.pay(invoice, options={"idempotency_key": "pay-http"})
    assert time.monotonic() - started >= 0.3  # dropped after `seconds`, with no answer
    assert v1.invoices.retrieve(invoice).status == "paid"
    assert server.emulator.webhooks.wait_idle(10)
    assert [json.loads(body)["type"] for body, _ in receiver.deliveries] == ["invoice.paid"]

    replay = requests.post(
        f"{server.url}/v1/invoices/{invoice}/pay",
        headers={**AUTH, "Idempotency-Key": "pay-http"},
        timeout=5,
    )
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["status"] == "paid"
    assert len(v1.charges.list({"customer": customer}).data) == 1


def test_stripe_python_retries_a_lost_answer_with_the_same_key(server: RunningServer) -> None:
    client = stripe.StripeClient(
        API_KEY,
        base_addresses={"api": server.url},
        http_client=stripe.RequestsClient(timeout=0.3),
        max_network_retries=1,
    )
    customer, invoice = _open_invoice(client.v1)
    add_fault(server, kind="timeout_after_commit", path="/v1/invoices/", seconds=1.0)
    paid = client.v1.invoices.pay(invoice)  # stripe-python's retry sends the same key
    assert paid.status == "paid"
    assert paid.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.charges.list({"customer": customer}).data) == 1
