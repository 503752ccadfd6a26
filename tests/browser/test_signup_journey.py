import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.models import Customer, User
from tests.browser.journeys import PASSWORD, confirmation_link, sign_up_and_confirm

pytestmark = pytest.mark.browser


def test_new_customer_signs_up_confirms_the_email_and_lands_on_the_home_page(
    page, other_membership
):
    sign_up_and_confirm(page, "browser@example.com", company_name="Browser Co")

    customer = Customer.objects.get(memberships__user__email="browser@example.com")
    assert User.objects.get(email="browser@example.com").is_email_verified
    assert page.locator("#customer-id").inner_text() == customer.customer_id
    assert page.locator("#trial-days-left").inner_text() == "14 days left"
    assert page.get_by_role("heading", name="Browser Co").is_visible()
    assert not page.locator("#email-unverified").is_visible()
    assert other_membership.customer.customer_id not in page.content()


def test_signup_with_a_taken_email_looks_the_same_and_emails_the_owner(page, other_membership):
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill("SOMEONE-ELSE@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    assert Customer.objects.count() == 1
    assert [m.subject for m in mail.outbox] == ["Someone tried to sign up with your address"]
    assert mail.outbox[0].to == ["someone-else@example.com"]


def test_a_used_confirmation_link_says_so(page, other_membership):
    sign_up_and_confirm(page, "twice@example.com")

    page.goto(confirmation_link("twice@example.com"))

    expect(page.get_by_role("heading", name="Email address confirmed already")).to_be_visible()
    page.get_by_role("link", name="Go to your account").click()
    page.wait_for_url(re.compile(r"/$"))
