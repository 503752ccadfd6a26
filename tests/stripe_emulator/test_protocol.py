"""The HTTP protocol: auth, errors, pagination, metadata, expand, persistence, webhooks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
import stripe

from .conftest import API_KEY, Receiver, RunningServer, http_client, start_server

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_health_and_unauthenticated_requests(server: RunningServer) -> None:
    assert requests.get(f"{server.url}/_emulator/health", timeout=5).json()["status"] == "ok"
    missing = requests.get(f"{server.url}/v1/customers", timeout=5)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    live = requests.get(
        f"{server.url}/v1/customers", headers={"Authorization": "Bearer sk_live_abc"}, timeout=5
    )
    assert live.status_code == 401
    assert live.json()["error"]["message"].startswith("Invalid API Key provided")
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_live_nope", base_addresses={"api": server.url}).v1.customers.list()


def test_resource_missing(server: RunningServer) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        http_client(server.url).v1.customers.retrieve("cus_x")
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"
    assert missing.value.user_message == "No such customer: 'cus_x'"
    assert missing.value.param == "id"


def test_pagination_both_ways(server: RunningServer) -> None:
    client = http_client(server.url)
    ids = [client.v1.customers.create({"email": f"p{i}@example.com"}).id for i in range(5)]
    newest_first = list(reversed(ids))
    page = client.v1.customers.list({"limit": 2})
    assert ([c.id for c in page.data], page.has_more) == (newest_first[:2], True)
    page = client.v1.customers.list({"limit": 2, "starting_after": page.data[-1].id})
    assert [c.id for c in page.data] == newest_first[2:4]
    last = client.v1.customers.list({"limit": 2, "starting_after": page.data[-1].id})
    assert ([c.id for c in last.data], last.has_more) == (newest_first[4:], False)
    before = client.v1.customers.list({"limit": 2, "ending_before": newest_first[4]})
    assert [c.id for c in before.data] == newest_first[2:4]
    assert [
        c.id for c in client.v1.customers.list({"limit": 100}).auto_paging_iter()
    ] == newest_first


def test_metadata_set_and_unset(server: RunningServer) -> None:
    client = http_client(server.url)
    customer = client.v1.customers.create({"metadata": {"a": "1", "b": "2"}})
    customer = client.v1.customers.update(customer.id, {"metadata": {"a": "", "c": "3"}})
    assert customer.metadata.to_dict() == {"b": "2", "c": "3"}
    customer = client.v1.customers.update(customer.id, {"metadata": ""})
    assert customer.metadata.to_dict() == {}


def test_list_by_email_and_search(server: RunningServer) -> None:
    client = http_client(server.url)
    ada = client.v1.customers.create(
        {"email": "ada@example.com", "metadata": {"customer_id": "cust_ada"}}
    )
    client.v1.customers.create(
        {"email": "bob@example.com", "metadata": {"customer_id": "cust_bob"}}
    )
    assert [c.id for c in client.v1.customers.list({"email": "ada@example.com"}).data] == [ada.id]
    found = client.v1.customers.search({"query": "metadata['customer_id']:'cust_ada'"})
    assert [c.id for c in found.data] == [ada.id]
    both = client.v1.customers.search(
        {"query": "email:'ada@example.com' AND metadata['customer_id']:'cust_bob'"}
    )
    assert both.data == []


def test_expand_nested_and_in_lists(server: RunningServer) -> None:
    client = http_client(server.url)
    customer = client.v1.customers.create({"email": "x@example.com"})
    card = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    client.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": card.id}}
    )
    price = client.v1.prices.create(
        {
            "product_data": {"name": "Pro"},
            "currency": "usd",
            "unit_amount": 500,
            "recurring": {"interval": "month"},
        }
    )
    subscription = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice.payments", "customer"],
        }
    )
    assert subscription.customer.email == "x@example.com"
    assert subscription.latest_invoice.payments.data[0].status == "paid"
    listed = client.v1.subscriptions.list({"customer": customer.id, "expand": ["data.customer"]})
    assert listed.data[0].customer.id == customer.id
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.customers.retrieve(customer.id, {"expand": ["nothing"]})
    assert bad.value.param == "expand"


def test_state_survives_restart_and_reset_clears_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    first = start_server(data_dir)
    customer = http_client(first.url).v1.customers.create({"email": "kept@example.com"})
    first.stop()
    second = start_server(data_dir)
    try:
        client = http_client(second.url)
        assert client.v1.customers.retrieve(customer.id).email == "kept@example.com"
        assert requests.post(f"{second.url}/_emulator/reset", timeout=5).status_code == 200
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.customers.retrieve(customer.id)
        assert client.v1.accounts.retrieve_current().id.startswith("acct_")
    finally:
        second.stop()


def test_webhooks_go_out_after_the_answer_with_state_saved(
    server: RunningServer, receiver: Receiver
) -> None:
    """A receiver that re-fetches the object at once (as dj-stripe does) finds it."""
    client = http_client(server.url)
    fetched: list[int] = []

    def refetch(body: bytes, headers: dict[str, str]) -> None:
        event = json.loads(body)
        if event["type"] == "customer.created":
            answer = requests.get(
                f"{server.url}/v1/customers/{event['data']['object']['id']}",
                headers=AUTH,
                timeout=5,
            )
            fetched.append(answer.status_code)

    receiver.on_delivery = refetch
    endpoint = client.v1.webhook_endpoints.create(
        {"url": receiver.url, "enabled_events": ["customer.created"]}
    )
    assert endpoint.secret.startswith("whsec_")
    customer = client.v1.customers.create({"email": "hook@example.com"})
    assert server.emulator.webhooks.wait_idle(5)
    assert fetched == [200]
    [(body, headers)] = receiver.deliveries
    event = stripe.Webhook.construct_event(
        body.decode(), headers["stripe-signature"], endpoint.secret
    )
    assert (event.type, event.data.object.id) == ("customer.created", customer.id)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), headers["stripe-signature"], "whsec_other")


def test_failed_deliveries_are_retried_with_backoff(
    server: RunningServer, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    client = http_client(server.url)
    client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["product.created"]})
    client.v1.products.create({"name": "Retried"})
    assert server.emulator.webhooks.wait_idle(5)
    log = requests.get(f"{server.url}/_emulator/deliveries", timeout=5).json()["data"]
    assert [(d["attempt"], d["status"], d["succeeded"]) for d in log] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert len(set(receiver.event_ids())) == 1


def test_concurrent_requests(server: RunningServer) -> None:
    client = http_client(server.url)
    errors: list[BaseException] = []

    def create_many() -> None:
        try:
            for _ in range(10):
                client.v1.customers.create({"email": "many@example.com"})
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=create_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(client.v1.customers.list({"email": "many@example.com", "limit": 100}).data) == 40


def test_hosted_page_is_labelled_and_links_to_cancel(server: RunningServer) -> None:
    client = http_client(server.url)
    session = client.v1.checkout.sessions.create(
        {
            "mode": "setup",
            "currency": "usd",
            "success_url": "http://x/ok",
            "cancel_url": "http://x/cancel",
        }
    )
    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200
    assert "Local Stripe emulator" in page.text and "Stripe, Inc" not in page.text
    assert 'href="http://x/cancel"' in page.text and "pm_card_chargeDeclined" in page.text
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    assert (
        requests.post(session.url, data={"payment_method": "pm_card_visa"}, timeout=5).status_code
        == 410
    )


def test_command_line_server(tmp_path: Path) -> None:
    """``python -m stripe_emulator`` serves, keeps its state in the data dir, and stops."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    repo = Path(__file__).resolve().parents[2]
    command = [
        sys.executable,
        "-m",
        "stripe_emulator",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
    ]
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, text=True)
    try:
        assert "listening on http://127.0.0.1:" in (
            process.stdout.readline() if process.stdout else ""
        )
        url = f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/_emulator/health", timeout=5).status_code == 200
        customer = requests.post(f"{url}/v1/customers", headers=AUTH, timeout=5).json()
        assert customer["object"] == "customer"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert (tmp_path / "emulator.sqlite3").exists()
