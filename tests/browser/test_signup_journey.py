import re

import pytest

from accounts.models import Customer

pytestmark = pytest.mark.browser


def test_new_customer_signs_up_and_lands_on_the_home_page(page, other_membership):
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill("browser@example.com")
    page.get_by_label("Password").fill("a-long-and-unusual-passphrase")
    page.get_by_label("Company name").fill("Browser Co")
    page.get_by_role("button", name="Create account").click()

    page.wait_for_url(re.compile(r"/$"))
    customer = Customer.objects.get(memberships__user__email="browser@example.com")
    assert page.locator("#customer-id").inner_text() == customer.customer_id
    assert page.locator("#trial-days-left").inner_text() == "14 days left"
    assert page.get_by_role("heading", name="Browser Co").is_visible()
    assert other_membership.customer.customer_id not in page.content()


def test_signup_with_a_taken_email_shows_the_error_on_the_page(page, other_membership):
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill("SOMEONE-ELSE@example.com")
    page.get_by_label("Password").fill("a-long-and-unusual-passphrase")
    page.get_by_role("button", name="Create account").click()

    assert page.get_by_text("An account with this email address already exists").is_visible()
    assert Customer.objects.count() == 1
