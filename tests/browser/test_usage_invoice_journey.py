"""Usage reported by a service shows in the customer's running total at once; after the
test clock passes the period end, the renewal is on the invoices page with its lines and a
hosted invoice that opens. Stripe is the emulator over HTTP, with its webhooks delivered to
the live portal, as under `make run`."""

import json
import re
import urllib.request
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Customer
from billing.models import Invoice
from licensing.api.authentication import service_key_create
from tests.browser.journeys import sign_up_and_confirm

pytestmark = pytest.mark.browser


def post_usage(base_url: str, key: str, customer_id: str, quantity: int) -> dict:
    body = {
        "customer_id": customer_id,
        "feature": "api_calls",
        "quantity": quantity,
        "idempotency_key": uuid.uuid4().hex,
    }
    request = urllib.request.Request(  # noqa: S310 - http to the live test server
        f"{base_url}/api/v1/usage",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - as above
        assert response.status == 201
        return json.load(response)


def test_usage_lands_in_the_running_total_and_the_renewal_on_the_invoices_page(
    page, live_server, stripe_over_http, settings, other_membership
):
    settings.STRIPE_TEST_CLOCKS = True  # the customer's Stripe customer gets its own clock
    call_command("stripe_setup", stdout=StringIO())  # catalog and webhook endpoint
    sign_up_and_confirm(page, "usage@example.com")
    customer = Customer.objects.get(memberships__user__email="usage@example.com")
    Customer.objects.filter(pk=customer.pk).update(trial_ends_at=timezone.now() - timedelta(1))

    page.goto("/billing/plans/")
    page.locator("[data-plan=pro]").get_by_role("button", name=re.compile("Pro")).click()
    expect(page.get_by_text("Local Stripe emulator")).to_be_visible()
    page.get_by_label("Visa 4242").check()
    page.get_by_role("button", name=re.compile("Confirm|Subscribe|Start")).click()
    page.wait_for_url(re.compile(r"/billing/plans/$"))
    expect(page.locator("#current-plan")).to_contain_text("You are on Pro (active)")

    # Pro includes 100,000 calls, then €2.00 per 10,000 begun: 150,000 is €10.00 more.
    _record, key = service_key_create(name="browser-test")
    answer = post_usage(live_server.url, key, customer.customer_id, 150_000)
    assert answer["billed"] is True
    page.goto("/billing/")
    expect(page.locator("#running-total")).to_have_text("€59.00")
    expect(page.locator('[data-line="usage:api_calls"]')).to_contain_text("€10.00")

    out = StringIO()
    call_command("stripe_clock_advance", customer.customer_id, "--days", "32", stdout=out)
    assert "(ready)" in out.getvalue()

    page.goto("/billing/invoices/")
    renewed = Invoice.objects.get(customer=customer, status=Invoice.Status.FINALIZED)
    row = page.locator(f'[data-invoice="{renewed.pk}"]')
    expect(row).to_contain_text(renewed.number)
    expect(row).to_contain_text("€59.00")
    expect(page.locator("#invoices tbody tr").first).to_contain_text("in progress")
    row.get_by_role("link", name=renewed.number).click()
    expect(page.locator("#lines")).to_contain_text("€10.00")
    expect(page.locator("#lines-total")).to_have_text("€59.00")

    # The hosted invoice (the emulator's page, in its own wording): the same lines, paid.
    page.get_by_role("link", name="Hosted invoice").click()
    expect(page.get_by_text("Local Stripe emulator")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Invoice {renewed.number}")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"^Total 59\.00 EUR"))).to_be_visible()
    expect(page.get_by_text("Status: paid")).to_be_visible()
