"""GET /api/v1/customers/{id} and its entitlements, usage and invoices: a service key reads
every customer, a customer's token or session only its own (404 otherwise, as for an id that
does not exist), and the query count does not grow with the rows."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import Invoice, InvoiceLine
from licensing.models import CustomerPlan, Plan
from tests.licensing.api_calls import USAGE, post, usage
from tests.licensing.test_me_api import idp, token  # noqa: F401 - the identity provider

NOW = datetime(2026, 4, 15, 12, tzinfo=UTC)
READS = ["api_customer", "api_customer_entitlements", "api_customer_usage", "api_customer_invoices"]


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def on_pro(customer):
    CustomerPlan.objects.update_or_create(
        customer=customer,
        defaults={
            "plan": Plan.objects.get(code="pro"),
            "status": CustomerPlan.Status.ACTIVE,
            "current_period_start": NOW - timedelta(days=14),
            "current_period_end": NOW + timedelta(days=16),
            "subscription_id": f"sub_{customer.pk[-6:]}",
        },
    )


def invoices(customer, count):
    plan = Plan.objects.get(code="pro")
    for n in range(count):
        start = NOW - timedelta(days=14 + 30 * n)
        invoice = Invoice.objects.create(
            customer=customer, plan=plan, currency="eur", period_start=start,
            period_end=start + timedelta(days=30), subscription_id="sub_x",
            status=Invoice.Status.OPEN if n == 0 else Invoice.Status.FINALIZED,
            total=None if n == 0 else 5100, number="" if n == 0 else f"INV-{n}",
        )  # fmt: skip
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=invoice,
                key=key,
                kind=kind,
                description=key,
                quantity=1,
                unit_amount=amount,
                amount=amount,
                period_start=start,
                period_end=start + timedelta(days=30),
            )
            for key, kind, amount in [("plan", "plan", 4900), ("usage:api_calls", "usage", 200)]
        )


def url(name, customer_id):
    return reverse(name, kwargs={"customer_id": customer_id})


@pytest.fixture
def two_customers(membership, other_membership, catalog, service_key):
    api = Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")  # not the `client` tests use
    on_pro(membership.customer)
    post(api, USAGE, usage(membership.customer.customer_id, quantity=120))
    post(api, USAGE, usage(other_membership.customer.customer_id, quantity=7))
    invoices(membership.customer, 3)
    invoices(other_membership.customer, 2)
    return membership.customer, other_membership.customer


@pytest.fixture
def api(service_key):
    return Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")


def test_a_service_key_reads_a_customer_its_plan_entitlements_usage_and_invoices(
    api, two_customers
):
    acme, _globex = two_customers
    customer = api.get(url("api_customer", acme.customer_id)).json()
    assert customer["customer_id"] == acme.customer_id
    assert customer["plan"]["code"] == "pro" and customer["plan"]["status"] == "active"

    entitlements = {
        e["feature"]: e for e in api.get(url("api_customer_entitlements", acme.pk)).json()
    }
    assert set(entitlements) == {"api_calls", "projects", "sso", "priority_support"}
    assert entitlements["api_calls"]["has_access"] is True
    assert entitlements["api_calls"]["usage"]["used"] == 120
    assert entitlements["sso"]["reason"] == "ok"
    assert entitlements["priority_support"]["reason"] == "feature_not_in_plan"
    # The same decision check-access gives.
    check = post(api, reverse("api_check_access"), {"customer_id": acme.pk, "feature": "api_calls"})
    assert {k: v for k, v in entitlements["api_calls"].items() if k not in ("feature", "kind")} == (
        check.json()
    )

    use = {u["feature"]: u for u in api.get(url("api_customer_usage", acme.pk)).json()}
    assert use["api_calls"]["used"] == 120
    assert use["api_calls"]["limit"] == 1_000_000
    assert use["api_calls"]["period_start"] == "2026-04-01T12:00:00Z"

    page = api.get(url("api_customer_invoices", acme.pk)).json()
    assert [i["status"] for i in page["results"]] == ["open", "finalized", "finalized"]
    assert page["results"][0]["lines_total"] == 5100
    assert [line["key"] for line in page["results"][0]["lines"]] == ["plan", "usage:api_calls"]


def test_invoices_come_in_cursor_pages(api, two_customers):
    acme, _globex = two_customers
    first = api.get(url("api_customer_invoices", acme.pk), {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = api.get(first["next"]).json()
    assert [i["number"] for i in second["results"]] == ["INV-2"]
    assert second["next"] is None


def test_the_invoices_read_takes_the_same_queries_for_1_and_40_invoices(api, two_customers):
    acme, globex = two_customers
    counts = []
    for customer, count in ((acme, 1), (globex, 40)):
        Invoice.objects.filter(customer=customer).delete()
        invoices(customer, count)
        with CaptureQueriesContext(connection) as queries:
            response = api.get(url("api_customer_invoices", customer.pk), {"page_size": 100})
        assert len(response.json()["results"]) == count
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_a_customer_token_reads_only_its_own_account(client, idp, two_customers):  # noqa: F811
    acme, globex = two_customers
    mine = {"HTTP_AUTHORIZATION": f"Bearer {token(idp)}"}  # owner@example.com: Acme
    for name in READS:
        assert client.get(url(name, acme.pk), **mine).status_code == 200, name
        theirs = client.get(url(name, globex.pk), **mine)
        missing = client.get(url(name, "cust_" + "0" * 32), **mine)
        assert theirs.status_code == missing.status_code == 404, name
        assert theirs.json()["error"]["code"] == "customer_not_found"


def test_the_portal_session_reads_its_own_account_only(signed_in_client, two_customers):
    acme, globex = two_customers
    for name in READS:
        assert signed_in_client.get(url(name, acme.pk)).status_code == 200
        assert signed_in_client.get(url(name, globex.pk)).status_code == 404


def test_no_or_bad_credentials_are_401(client, two_customers):
    acme, _globex = two_customers
    for name in READS:
        assert client.get(url(name, acme.pk)).status_code == 401
        bad = client.get(url(name, acme.pk), HTTP_AUTHORIZATION="Bearer bp_nope")
        assert bad.status_code == 401


def test_the_reads_are_read_only(api, two_customers):
    acme, _globex = two_customers
    for name in READS:
        assert api.post(url(name, acme.pk), {}, content_type="application/json").status_code == 405


def test_the_reads_are_in_the_openapi_schema(client, db):
    import yaml

    paths = yaml.safe_load(client.get(reverse("api_schema")).content)["paths"]
    for path in (
        "/api/v1/customers/{customer_id}",
        "/api/v1/customers/{customer_id}/entitlements",
        "/api/v1/customers/{customer_id}/usage",
        "/api/v1/customers/{customer_id}/invoices",
    ):
        assert set(paths[path]) == {"get", "parameters"} or set(paths[path]) == {"get"}, path
