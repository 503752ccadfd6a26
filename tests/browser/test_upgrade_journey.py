import re

import pytest
from playwright.sync_api import expect

from billing.setup import catalog_push
from licensing.catalog import catalog_read
from tests.browser.journeys import sign_up_and_confirm

pytestmark = pytest.mark.browser


def test_trial_customer_upgrades_through_checkout_and_sees_the_new_plan(
    page, stripe_over_http, other_membership
):
    catalog_push(catalog=catalog_read())
    sign_up_and_confirm(page, "upgrade@example.com")

    page.goto("/billing/plans/")
    expect(page.locator("#current-plan")).to_contain_text("14 days left")
    page.locator("[data-plan=pro]").get_by_role("button", name="Choose Pro").click()

    expect(page.get_by_text("Local Stripe emulator")).to_be_visible()
    page.get_by_label("Visa 4242").check()
    page.get_by_role("button", name=re.compile("Confirm|Subscribe|Start")).click()

    page.wait_for_url(re.compile(r"/billing/plans/$"))
    expect(page.get_by_text("Welcome to Pro! Your trial continues")).to_be_visible()
    expect(page.locator("#current-plan")).to_contain_text("You are on Pro (trialing)")
    expect(page.locator("[data-plan=pro]")).to_contain_text("Current plan")
