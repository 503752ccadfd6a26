"""The billing pages that show money: the running total on /billing/, usage day by day,
every invoice and each one's lines, and the home page. All from our database: no Stripe
call, and the same number of queries with 1 invoice as with 50."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership
from billing.invoicing import current_invoice_ensure
from billing.models import Invoice, InvoiceLine
from licensing.catalog import catalog_read
from licensing.services import catalog_load
from tests.accounts.factories import MembershipFactory
from tests.billing.test_invoicing import APRIL, MAY, NOW, attach, on_plan, use

PAGES = ["billing:overview", "billing:usage", "billing:invoices"]


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def catalog(db):
    catalog_load(catalog=catalog_read())


@pytest.fixture
def customer(membership, other_membership, catalog, stripe_emulator):
    """On Pro this April with use beyond what is included and an extra project; another
    customer has an invoice of their own."""
    customer = membership.customer
    on_plan(customer, "pro")
    use(customer, 100_000, APRIL + timedelta(days=1))
    use(customer, 45_000, datetime(2026, 4, 20, 9, tzinfo=UTC))
    for n in range(20):
        attach(customer, f"proj_{n}", APRIL - timedelta(days=40))
    attach(customer, "proj_extra", datetime(2026, 4, 11, tzinfo=UTC))
    current_invoice_ensure(customer=customer)
    on_plan(other_membership.customer, "starter")
    current_invoice_ensure(customer=other_membership.customer)
    return customer


def finalized_invoices(customer, count: int, lines: int = 2) -> list[Invoice]:
    """`count` earlier cycles, finalized at Stripe, each with `lines` lines."""
    made = []
    for n in range(1, count + 1):
        start, end = APRIL - timedelta(days=30 * n), APRIL - timedelta(days=30 * (n - 1))
        invoice = Invoice.objects.create(
            customer=customer, plan_id=customer.plan.plan_id, currency="eur",
            period_start=start, period_end=end, status=Invoice.Status.FINALIZED,
            subscription_id="sub_test", stripe_invoice_id=f"in_{n}", number=f"ACME-{n:04d}",
            total=4900 + 100 * (lines - 1), finalized_at=end,
            hosted_invoice_url=f"https://invoice.example/in_{n}",
            invoice_pdf=f"https://invoice.example/in_{n}.pdf",
        )  # fmt: skip
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=invoice,
                key="plan" if i == 0 else f"usage:x{i}",
                kind="plan" if i == 0 else "usage",
                description=f"line {i}",
                quantity=1,
                unit_amount=4900 if i == 0 else 100,
                amount=4900 if i == 0 else 100,
                period_start=start,
                period_end=end,
            )
            for i in range(lines)
        )
        made.append(invoice)
    return made


def test_billing_shows_the_running_total_next_charge_and_use(signed_in_client, customer):
    page = signed_in_client.get(reverse("billing:overview"))
    html = page.content.decode()
    assert page.context["running_total"] == 4900 + 1000 + 200
    assert '<strong id="running-total">€61.00</strong>' in html
    assert "1 May 2026, about €61.00" in html
    assert "not yet" in html  # never synced to Stripe yet
    api_calls = next(use for use in page.context["feature_use"] if use.key == "api_calls")
    assert (api_calls.used, api_calls.included, api_calls.limit) == (145_000, 100_000, 1_000_000)
    assert 'data-feature="api_calls"' in html and "145,000" in html and "1,000,000" in html


def test_cancelling_at_period_end_leaves_the_plan_out_of_the_next_charge(
    signed_in_client, customer
):
    on_plan(customer, "pro", cancel_at_period_end=True)
    page = signed_in_client.get(reverse("billing:overview"))
    assert page.context["next_charge"] == 1200


def test_the_usage_page_charts_each_day_and_lists_what_was_held(signed_in_client, customer):
    page = signed_in_client.get(reverse("billing:usage"))
    (api_calls,) = page.context["usage_days"]
    assert len(api_calls.days) == 30
    assert api_calls.total == 145_000
    by_day = {bar.day.day: (bar.quantity, bar.percent) for bar in api_calls.days}
    assert by_day[2] == (100_000, 100)
    assert by_day[20] == (45_000, 45)
    assert by_day[21] == (0, 0)
    html = page.content.decode()
    assert html.count("<rect ") == 30
    extra = next(h for h in page.context["holdings"] if h.resource_id == "proj_extra")
    assert extra.days_in_cycle == 20
    assert len(page.context["holdings"]) == 21
    assert "other_" not in html


def test_invoices_list_the_current_one_first_with_links_to_stripe(signed_in_client, customer):
    finalized_invoices(customer, 2)
    page = signed_in_client.get(reverse("billing:invoices"))
    invoices = page.context["invoices"]
    assert [invoice.status for invoice in invoices] == ["open", "finalized", "finalized"]
    assert invoices[0].lines_total == 6100
    html = page.content.decode()
    assert html.index("in progress") < html.index("ACME-0001") < html.index("ACME-0002")
    assert 'href="https://invoice.example/in_1"' in html
    assert 'href="https://invoice.example/in_1.pdf"' in html
    assert "€61.00" in html and "€50.00" in html


def test_an_invoice_shows_its_lines(signed_in_client, customer):
    current = customer.invoices.get(status="open")
    page = signed_in_client.get(reverse("billing:invoice_detail", args=[current.pk]))
    html = page.content.decode()
    assert [line.key for line in page.context["lines"]] == [
        "plan", "held:projects", "usage:api_calls",
    ]  # fmt: skip
    assert page.context["lines_total"] == 6100
    assert "20.0 days" in html and "€3.00 per cycle" in html
    assert "45,000" in html and "€2.00 per 10,000" in html
    assert '<th class="amount" id="lines-total">€61.00</th>' in html


def test_another_customers_invoice_is_a_404(signed_in_client, customer, other_membership):
    theirs = other_membership.customer.invoices.get()
    response = signed_in_client.get(reverse("billing:invoice_detail", args=[theirs.pk]))
    assert response.status_code == 404
    missing = signed_in_client.get(reverse("billing:invoice_detail", args=[theirs.pk + 999]))
    assert missing.status_code == 404


def test_members_without_a_billing_role_get_403(client, customer):
    member = MembershipFactory(customer=customer, role=Membership.Role.MEMBER)
    client.force_login(member.user)
    invoice = customer.invoices.get()
    for url in [
        reverse("billing:usage"),
        reverse("billing:invoices"),
        reverse("billing:invoice_detail", args=[invoice.pk]),
    ]:
        assert client.get(url).status_code == 403, url
    overview = client.get(reverse("billing:overview"))
    assert overview.status_code == 200
    assert "running-total" not in overview.content.decode()


def test_with_billing_disabled_the_pages_answer_501(signed_in_client, customer, settings):
    settings.BILLING_ENABLED = False
    for name in ["billing:usage", "billing:invoices"]:
        assert signed_in_client.get(reverse(name)).status_code == 501


def test_without_a_paid_plan_the_pages_say_nothing_is_billed(
    signed_in_client, membership, other_membership, catalog, stripe_emulator
):
    use(membership.customer, 10, NOW)
    html = signed_in_client.get(reverse("billing:overview")).content.decode()
    assert "billed nowhere" in html
    assert signed_in_client.get(reverse("billing:usage")).status_code == 200
    listing = signed_in_client.get(reverse("billing:invoices"))
    assert "No invoices yet" in listing.content.decode()


def queries(client, url) -> int:
    client.get(url)  # the first view may compute lines; compare steady pages
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_pages_make_no_stripe_call_and_the_same_queries_with_1_and_50_invoices(
    signed_in_client, customer, stripe_emulator
):
    calls_before = len(stripe_emulator.http.requests)
    urls = [reverse(name) for name in PAGES] + [reverse("home")]
    current = customer.invoices.get()
    urls.append(reverse("billing:invoice_detail", args=[current.pk]))
    with_one = [queries(signed_in_client, url) for url in urls]

    (older,) = finalized_invoices(customer, 1, lines=2)
    detail = reverse("billing:invoice_detail", args=[older.pk])
    detail_few_lines = queries(signed_in_client, detail)

    Invoice.objects.filter(pk=older.pk).delete()
    (older, *_rest) = finalized_invoices(customer, 49, lines=30)
    assert customer.invoices.count() == 50
    with_fifty = [queries(signed_in_client, url) for url in urls]
    assert with_one == with_fifty
    assert queries(signed_in_client, reverse("billing:invoice_detail", args=[older.pk])) == (
        detail_few_lines
    )
    assert len(stripe_emulator.http.requests) == calls_before


def test_home_shows_the_plan_use_against_limits_and_the_license_expiry(signed_in_client, customer):
    from licensing.licenses import license_refresh

    license_refresh(customer=customer)
    html = signed_in_client.get(reverse("home")).content.decode()
    assert "<strong>Pro</strong> (active)" in html
    assert 'id="license-expiry">valid until' in html
    assert 'data-feature="api_calls"' in html and "145,000" in html
    assert MAY.strftime("%-d %B %Y") in html


def test_staff_see_invoices_and_the_resource_ledger_read_only(admin_client, customer):
    invoice = customer.invoices.get()
    page = admin_client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    assert page.status_code == 200
    assert "usage:api_calls" in page.content.decode()
    ledger = admin_client.get(reverse("admin:licensing_resourceevent_changelist"))
    assert "proj_extra" in ledger.content.decode()
    assert admin_client.get(reverse("admin:licensing_resourceevent_add")).status_code == 403


def test_a_subscriber_from_before_invoices_existed_gets_the_current_one_on_the_page(
    signed_in_client, customer
):
    Invoice.objects.filter(customer=customer).delete()
    page = signed_in_client.get(reverse("billing:overview"))
    assert page.context["running_total"] == 6100
    assert customer.invoices.get().period_start == APRIL
