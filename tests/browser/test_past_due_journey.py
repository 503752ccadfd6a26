"""A renewal whose card declines: every portal page says so with a link to pay, the
customer pays on Stripe's hosted invoice page, comes back, and the banner is gone. Stripe
is the emulator over HTTP with its webhooks delivered to the live portal, as under
`make run`."""

import re
import time
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from accounts.models import Customer
from billing.models import InvoiceRecovery
from tests.browser.journeys import sign_up_and_confirm

pytestmark = pytest.mark.browser

BANNER = re.compile(r"Your payment of €19\.00 failed on \d{1,2} [A-Z][a-z]+\.")


def test_a_past_due_customer_pays_on_the_hosted_invoice_page_and_the_banner_goes(
    page, live_server, stripe_over_http, settings, other_membership
):
    settings.STRIPE_TEST_CLOCKS = True  # the customer's Stripe customer gets its own clock
    call_command("stripe_setup", stdout=StringIO())  # catalog and webhook endpoint
    sign_up_and_confirm(page, "pastdue@example.com")
    customer = Customer.objects.get(memberships__user__email="pastdue@example.com")

    # Starter in the trial, with the test card that is saved and then declines every charge.
    page.goto("/billing/plans/")
    page.locator("[data-plan=starter]").get_by_role("button", name=re.compile("Starter")).click()
    page.get_by_label("Visa 0341 — attaches, then declines").check()
    page.get_by_role("button", name=re.compile("Confirm|Subscribe|Start")).click()
    page.wait_for_url(re.compile(r"/billing/plans/$"))
    expect(page.locator("#current-plan")).to_contain_text("Starter")
    expect(page.get_by_role("alert").filter(has_text=BANNER)).to_have_count(0)

    # The trial ends: the first payment declines (a decline the same card may get past
    # later, and no other card to try), and Stripe's webhooks reach the portal.
    out = StringIO()
    call_command("stripe_clock_advance", customer.customer_id, "--days", "16", stdout=out)
    assert "(ready)" in out.getvalue()
    deadline = time.monotonic() + 15
    while not InvoiceRecovery.objects.filter(customer=customer, status="open").exists():
        assert time.monotonic() < deadline, "the failed payment never reached the portal"
        time.sleep(0.1)

    for path in ("/", "/billing/", "/billing/invoices/"):
        page.goto(path)
        expect(page.get_by_role("alert").filter(has_text=BANNER)).to_be_visible()
    expect(page.get_by_role("link", name="Update cards")).to_have_attribute(
        "href", "/billing/payment-methods/"
    )

    # Pay now: Stripe's hosted invoice page, with another card.
    page.get_by_role("link", name="Pay now").click()
    expect(page.get_by_text("Local Stripe emulator")).to_be_visible()
    expect(page.get_by_text("Status: open")).to_be_visible()
    page.get_by_label("Visa 4242 — succeeds").check()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Thank you: this invoice is paid.")).to_be_visible()

    # Back to the portal: once Stripe's invoice.paid is in, no page shows the banner.
    page.go_back()
    deadline = time.monotonic() + 15
    while InvoiceRecovery.objects.filter(customer=customer, status="open").exists():
        assert time.monotonic() < deadline, "the payment never reached the portal"
        time.sleep(0.1)
    for path in ("/", "/billing/"):
        page.goto(path)
        expect(page.get_by_role("heading").first).to_be_visible()
        expect(page.get_by_text("failed on")).to_have_count(0)
