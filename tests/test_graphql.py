# ruff: noqa: F811 - fixtures imported from tests/licensing, used as arguments
"""/api/graphql/: read-only, scoped to the caller, bounded (depth, aliases, page size: an
error naming the bound, no query run), cursor pages, and each documented query (README)
costs the same SQL queries for a page of 1 as for a page of 100."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import Invoice, InvoiceLine
from licensing.models import CustomerPlan, License, Plan, SigningKey, UsageTotal
from licensing.selectors import customers_entitlements
from tests.accounts.factories import CustomerFactory, MembershipFactory
from tests.licensing.conftest import catalog, service_key  # noqa: F401 - fixtures
from tests.licensing.test_me_api import idp, token  # noqa: F401 - the identity provider

NOW = datetime(2026, 4, 15, 12, tzinfo=UTC)
URL = "/api/graphql/"

# The documented queries (README, "GraphQL"), word for word.
CUSTOMERS = """
query Customers($first: Int!, $after: String) {
  customers(first: $first, after: $after) {
    edges { cursor node {
      customerId name trialEndsAt
      plan { code status currentPeriodEnd cancelAtPeriodEnd graceEndsAt }
      entitlements { feature kind hasAccess reason used limit remaining resetsAt }
      usage { feature used limit remaining periodStart resetsAt }
      currentInvoice { id status currency linesTotal lines { key description amount } }
      license { jti planCode status expiresAt }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
CUSTOMER_INVOICES = """
query CustomerInvoices($id: ID!, $first: Int!, $after: String) {
  customer(customerId: $id) {
    invoices(first: $first, after: $after) {
      edges { cursor node { id number status total linesTotal periodStart
        lines { key kind quantity amount } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
CUSTOMER_LICENSES = """
query CustomerLicenses($id: ID!, $first: Int!, $after: String) {
  customer(customerId: $id) {
    licenses(first: $first, after: $after) {
      edges { cursor node { jti planCode status features issuedAt expiresAt revokedAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
VIEWER = """
query Viewer {
  viewer {
    customerId name
    plan { code status }
    entitlements { feature hasAccess reason used limit }
    usage { feature used limit resetsAt }
    currentInvoice { id linesTotal lines { key amount } }
    license { jti expiresAt token }
  }
}"""
CUSTOMERS_WITH_HISTORY = """
query CustomersWithHistory($first: Int!) {
  customers(first: $first) {
    edges { node { customerId invoices(first: 3) { edges { node { id lines { amount } } } } } }
  }
}"""


def test_the_documented_queries_are_the_readmes():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for query in (CUSTOMERS, CUSTOMER_INVOICES, CUSTOMER_LICENSES, VIEWER, CUSTOMERS_WITH_HISTORY):
        assert query.strip() in readme


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def gql(client, query, **variables):
    return client.post(
        URL, {"query": query, "variables": variables}, content_type="application/json"
    )


def on_pro(customer):
    CustomerPlan.objects.create(
        customer=customer,
        plan=Plan.objects.get(code="pro"),
        status=CustomerPlan.Status.ACTIVE,
        current_period_start=NOW - timedelta(days=14),
        current_period_end=NOW + timedelta(days=16),
        subscription_id=f"sub_{customer.pk[-8:]}",
    )


def furnish(customers, *, invoices=2, licenses=2):
    """Each customer on Pro with use, `invoices` cycles (the newest open) and `licenses`."""
    key = SigningKey.objects.get_or_create(
        kid="k1", defaults={"public_key": "-", "is_current": True}
    )[0]
    pro = Plan.objects.get(code="pro")
    api_calls = pro.plan_features.get(feature__key="api_calls").feature
    period_start = NOW - timedelta(days=14)
    for customer in customers:
        on_pro(customer)
        UsageTotal.objects.create(
            customer=customer, feature=api_calls, period_start=period_start, used=123
        )
        for n in range(invoices):
            start = period_start - timedelta(days=30 * n)
            invoice = Invoice.objects.create(
                customer=customer, plan=pro, currency="eur", period_start=start,
                period_end=start + timedelta(days=30), subscription_id="sub_x",
                status=Invoice.Status.OPEN if n == 0 else Invoice.Status.FINALIZED,
                number="" if n == 0 else f"{customer.pk[-4:]}-{n}",
            )  # fmt: skip
            InvoiceLine.objects.bulk_create(
                InvoiceLine(
                    invoice=invoice,
                    key=k,
                    kind=kind,
                    description=k,
                    quantity=1,
                    unit_amount=amount,
                    amount=amount,
                    period_start=start,
                    period_end=start + timedelta(days=30),
                )
                for k, kind, amount in [("plan", "plan", 4900), ("usage:api_calls", "usage", 200)]
            )
        License.objects.bulk_create(
            License(
                jti=uuid.uuid4(),
                customer=customer,
                plan_code="pro",
                status="active",
                features={"sso": True},
                kid=key,
                issued_at=NOW - timedelta(days=n),
                expires_at=NOW + timedelta(days=19),
                revoked_at=None if n == 0 else NOW - timedelta(days=n - 1),
                token=f"t.{n}.x",
            )
            for n in range(licenses)
        )


@pytest.fixture
def service(service_key):
    return Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")


@pytest.fixture
def two(membership, other_membership, catalog):
    furnish([membership.customer, other_membership.customer], invoices=3, licenses=3)
    return membership.customer, other_membership.customer


def test_a_service_reads_customers_their_plan_entitlements_usage_invoice_and_license(service, two):
    acme, _globex = two
    body = gql(service, CUSTOMERS, first=10).json()
    assert "errors" not in body, body
    nodes = {e["node"]["customerId"]: e["node"] for e in body["data"]["customers"]["edges"]}
    assert set(nodes) == {c.pk for c in two}
    node = nodes[acme.pk]
    assert node["plan"]["code"] == "pro" and node["plan"]["status"] == "active"
    api_calls = next(e for e in node["entitlements"] if e["feature"] == "api_calls")
    # The same decision as check-access (and the REST read).
    (expected,) = [
        e.decision
        for e in customers_entitlements(customers=[acme], now=NOW)[acme.pk]
        if e.feature == "api_calls"
    ]
    assert (api_calls["hasAccess"], api_calls["reason"], api_calls["used"]) == (
        expected.has_access, expected.reason, 123,
    )  # fmt: skip
    reasons = {e["feature"]: e["reason"] for e in node["entitlements"]}
    assert reasons == {
        "api_calls": "ok", "projects": "ok", "sso": "ok", "priority_support": "feature_not_in_plan",
    }  # fmt: skip
    assert node["usage"][0]["periodStart"] == "2026-04-01T12:00:00+00:00"
    assert node["currentInvoice"]["status"] == "OPEN" or node["currentInvoice"]["status"] == "open"
    assert node["currentInvoice"]["linesTotal"] == 5100
    assert node["license"]["status"] == "active"


def test_invoice_history_and_licenses_come_in_cursor_pages(service, two):
    acme, _globex = two
    first = gql(service, CUSTOMER_INVOICES, id=acme.pk, first=2).json()["data"]["customer"]
    page = first["invoices"]
    assert len(page["edges"]) == 2 and page["pageInfo"]["hasNextPage"] is True
    rest = gql(service, CUSTOMER_INVOICES, id=acme.pk, first=2, after=page["pageInfo"]["endCursor"])
    rest = rest.json()["data"]["customer"]["invoices"]
    assert [e["node"]["number"] for e in rest["edges"]] == [f"{acme.pk[-4:]}-2"]
    assert rest["pageInfo"]["hasNextPage"] is False
    licenses = gql(service, CUSTOMER_LICENSES, id=acme.pk, first=1).json()["data"]["customer"]
    assert licenses["licenses"]["edges"][0]["node"]["revokedAt"] is None
    more = gql(
        service, CUSTOMER_LICENSES, id=acme.pk, first=5,
        after=licenses["licenses"]["pageInfo"]["endCursor"],
    ).json()["data"]["customer"]["licenses"]  # fmt: skip
    assert len(more["edges"]) == 2 and all(e["node"]["revokedAt"] for e in more["edges"])


def test_customers_come_in_cursor_pages(service, two):
    first = gql(service, CUSTOMERS, first=1).json()["data"]["customers"]
    second = gql(service, CUSTOMERS, first=1, after=first["pageInfo"]["endCursor"]).json()
    second = second["data"]["customers"]
    assert first["pageInfo"]["hasNextPage"] is True and second["pageInfo"]["hasNextPage"] is False
    ids = {first["edges"][0]["node"]["customerId"], second["edges"][0]["node"]["customerId"]}
    assert ids == {c.pk for c in two}


@pytest.fixture
def many(catalog, membership, other_membership):
    """101 customers with plans, use, invoices and licenses: pages of 1 and of 100."""
    customers = [membership.customer, other_membership.customer]
    customers += [MembershipFactory().customer for _ in range(99)]
    furnish(customers, invoices=2, licenses=2)
    return customers


def queries_for(client, query, **variables) -> int:
    with CaptureQueriesContext(connection) as queries:
        body = gql(client, query, **variables).json()
    assert "errors" not in body, body
    return len(queries), body


@pytest.mark.parametrize(
    ("query", "path"),
    [
        (CUSTOMERS, "customers"),
        (CUSTOMERS_WITH_HISTORY, "customers"),
        (CUSTOMER_INVOICES, "invoices"),
        (CUSTOMER_LICENSES, "licenses"),
    ],
)
def test_each_documented_query_costs_the_same_sql_for_pages_of_1_and_100(
    service, many, query, path
):
    """Must show 1: the SQL count is constant in the page size."""
    furnish_more = path in ("invoices", "licenses")
    variables = {"id": many[0].pk} if furnish_more else {}
    if furnish_more:  # 100 of them for one customer
        Invoice.objects.filter(customer=many[0]).delete()
        License.objects.filter(customer=many[0]).delete()
        CustomerPlan.objects.filter(customer=many[0]).delete()
        UsageTotal.objects.filter(customer=many[0]).delete()
        furnish([many[0]], invoices=101, licenses=101)
    gql(service, query, first=1, **variables)  # the catalog's limits, read once
    small, _body = queries_for(service, query, first=1, **variables)
    large, large_body = queries_for(service, query, first=100, **variables)
    edges = (large_body["data"]["customer"] or {}).get(path) if furnish_more else None
    edges = (edges or large_body["data"][path])["edges"]
    assert len(edges) == 100
    assert small == large, (small, large)


def test_the_viewer_query_is_the_callers_own_account(client, idp, two):
    acme, _globex = two
    mine = Client(HTTP_AUTHORIZATION=f"Bearer {token(idp)}")
    body = gql(mine, VIEWER).json()
    assert body["data"]["viewer"]["customerId"] == acme.pk
    with CaptureQueriesContext(connection) as queries:
        gql(mine, VIEWER)
    assert len(queries) <= 14, [q["sql"] for q in queries]


# --- Bounds and refusals ------------------------------------------------------------------


def not_the_key(queries) -> list[str]:
    """The statements a request ran besides looking up its service key (remembered for
    SERVICE_KEY_CACHE_SECONDS, so looked up at most once)."""
    return [q["sql"] for q in queries if "licensing_serviceapikey" not in q["sql"]]


def test_a_page_over_the_bound_is_refused_naming_it_and_runs_no_query(service, two):
    for query, variables in (
        ("{ customers(first: 101) { edges { cursor } } }", {}),
        (CUSTOMERS, {"first": 500}),
        ("{ customers(first: 0) { edges { cursor } } }", {}),
    ):
        with CaptureQueriesContext(connection) as queries:
            body = gql(service, query, **variables).json()
        assert body["data"] is None
        assert "page size bound of 1 to 100" in body["errors"][0]["message"]
        assert body["errors"][0]["extensions"]["code"] == "page_size_exceeded"
        # At most the service key's lookup: nothing of the query ran.
        assert not_the_key(queries) == []


DEEPEST = (  # 8 levels: the deepest path the schema has
    "query Deep { customers(first: 1) { edges { node { invoices(first: 1) { edges { node { "
    "lines { key } } } } } } } }"
)


def test_depth_over_8_is_refused_naming_the_bound_and_runs_no_query(service, two):
    assert "errors" not in gql(service, DEEPEST).json()
    # The schema is no deeper than DEEPEST: past it, the bound speaks before any field check.
    nine = DEEPEST.replace("lines { key }", "lines { key { deeper } }")
    with CaptureQueriesContext(connection) as queries:
        body = gql(service, nine).json()
    assert body.get("data") is None
    messages = [e["message"] for e in body["errors"]]
    assert "Fields nested 9 deep: over the depth bound of 8." in messages, messages
    assert not_the_key(queries) == []
    fragments = "fragment L on InvoiceLine { key { x } } " + DEEPEST.replace("key", "...L")
    body = gql(service, fragments).json()
    assert any("depth bound of 8" in e["message"] for e in body["errors"]), body


def test_aliases_over_15_are_refused_naming_the_bound_and_run_no_query(service, two):
    many = " ".join(f"a{n}: customers(first: 1) {{ edges {{ cursor }} }}" for n in range(16))
    with CaptureQueriesContext(connection) as queries:
        body = gql(service, "{ " + many + " }").json()
    assert "16 aliases found. Allowed: 15" in body["errors"][0]["message"]
    assert body.get("data") is None
    assert not_the_key(queries) == []
    fifteen = " ".join(f"a{n}: customers(first: 1) {{ edges {{ cursor }} }}" for n in range(15))
    assert "errors" not in gql(service, "{ " + fifteen + " }").json()


def test_a_mutation_is_refused(service, two):
    for query in ("mutation { customers { edges { cursor } } }", "mutation X { x }"):
        body = gql(service, query).json()
        assert body.get("data") is None and body["errors"], body
    get = service.get(URL, {"query": "mutation { x }"})
    assert get.status_code in (400, 405)


def test_without_credentials_the_api_is_401(client, two):
    response = gql(client, CUSTOMERS, first=1)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "not_authenticated"
    bad = gql(Client(HTTP_AUTHORIZATION="Bearer bp_wrong"), CUSTOMERS, first=1)
    assert bad.status_code == 401


def test_graphiql_only_with_debug(service, two, settings):
    settings.DEBUG = False
    page = service.get(URL, HTTP_ACCEPT="text/html")
    assert b"graphiql" not in page.content.lower()
    settings.DEBUG = True
    page = service.get(URL, HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"graphiql" in page.content.lower()


def test_a_session_post_needs_the_csrf_token(two, membership):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(membership.user)
    assert gql(browser, VIEWER).status_code == 403
    browser.get("/accounts/login/")  # sets the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    response = browser.post(
        URL, {"query": VIEWER}, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert response.json()["data"]["viewer"]["customerId"] == membership.customer.pk


# --- Must show 1: no cross-tenant read over GraphQL or REST ----------------------------------


def test_idor_sweep_of_graphql_and_the_rest_reads_with_two_customers_tokens(
    idp,
    two,
    catalog,
):
    """Each customer's token reads its own account and nothing of the other's, through every
    GraphQL entry point and every REST read; an unknown id looks the same as another's."""
    from django.urls import reverse

    acme, globex = two
    stranger = CustomerFactory()  # no members at all
    tokens = {
        acme.pk: token(idp, email="owner@example.com"),
        globex.pk: token(idp, email="someone-else@example.com"),
    }
    cross_reads = 0
    for own_id, bearer in tokens.items():
        caller = Client(HTTP_AUTHORIZATION=f"Bearer {bearer}")
        others = [c for c in (acme.pk, globex.pk, stranger.pk) if c != own_id]
        # GraphQL: the list, the viewer, and by id.
        listed = gql(caller, CUSTOMERS, first=100).json()["data"]["customers"]["edges"]
        assert [e["node"]["customerId"] for e in listed] == [own_id]
        assert gql(caller, VIEWER).json()["data"]["viewer"]["customerId"] == own_id
        for query in (CUSTOMER_INVOICES, CUSTOMER_LICENSES):
            mine = gql(caller, query, id=own_id, first=100).json()
            assert mine["data"]["customer"] is not None
            for other in [*others, "cust_" + "f" * 32]:
                body = gql(caller, query, id=other, first=100).json()
                if body["data"]["customer"] is not None:
                    cross_reads += 1
                assert body["errors"][0]["extensions"]["code"] == "not_found"
        # REST: every read endpoint.
        for name in (
            "api_customer", "api_customer_entitlements", "api_customer_usage",
            "api_customer_invoices",
        ):  # fmt: skip
            assert caller.get(reverse(name, kwargs={"customer_id": own_id})).status_code == 200
            for other in others:
                response = caller.get(reverse(name, kwargs={"customer_id": other}))
                if response.status_code != 404:
                    cross_reads += 1
        # Nothing of the others' in anything the caller could read.
        everything = b"".join(
            [gql(caller, CUSTOMERS, first=100).content, gql(caller, VIEWER).content]
            + [
                caller.get(reverse(name, kwargs={"customer_id": own_id})).content
                for name in ("api_customer", "api_customer_invoices")
            ]
        )
        for other in others:
            assert other.encode() not in everything
    assert cross_reads == 0


def test_a_cursor_not_from_this_api_is_an_error_not_a_500(service, two):
    acme, _globex = two
    for cursor in ("nonsense", "bm90|YQ", ""):
        body = gql(service, CUSTOMERS, first=1, after=cursor or "====").json()
        assert body["errors"][0]["extensions"]["code"] == "invalid_cursor", body
    from billing_portal.graphql.schema import cursor_encode

    for cursor in ("x", cursor_encode("2026-04-01T00:00:00+00:00", "not-a-number")):
        body = gql(service, CUSTOMER_INVOICES, id=acme.pk, first=1, after=cursor).json()
        assert body["errors"][0]["extensions"]["code"] == "invalid_cursor", body


def test_a_license_cursor_not_from_this_api_is_an_error(service, two):
    from billing_portal.graphql.schema import cursor_encode

    acme, _globex = two
    cursor = cursor_encode("2026-04-01T00:00:00+00:00", "not-a-uuid")
    body = gql(service, CUSTOMER_LICENSES, id=acme.pk, first=1, after=cursor).json()
    assert body["errors"][0]["extensions"]["code"] == "invalid_cursor", body


def test_a_service_asking_for_an_unknown_customer_gets_not_found(service, two):
    body = gql(service, CUSTOMER_LICENSES, id="cust_" + "0" * 32, first=1).json()
    assert body["data"]["customer"] is None
    assert body["errors"][0]["extensions"]["code"] == "not_found"
