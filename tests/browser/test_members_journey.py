"""An owner invites a colleague from the members page; the colleague opens the emailed
link in their own browser, chooses a password and lands in the owner's account with the
role they were invited with. Another account is present and never shown."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.models import Customer, Membership
from tests.browser.journeys import PASSWORD, sign_up_and_confirm

pytestmark = pytest.mark.browser


def invitation_link(email: str) -> str:
    """The path of the invitation link in the newest email to `email` (the portal's
    in-memory outbox: the live server runs in this process)."""
    message = [m for m in mail.outbox if m.to == [email] and "/account/invitations/" in m.body][-1]
    return urlsplit(re.search(r"https?://\S+/account/invitations/\S+/", message.body).group(0)).path


def test_an_owner_invites_a_member_who_accepts_through_the_emailed_link(
    page, browser, live_server, other_membership
):
    sign_up_and_confirm(page, "boss@example.com", company_name="Boss Co")
    customer = Customer.objects.get(memberships__user__email="boss@example.com")

    page.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members of Boss Co")).to_be_visible()
    page.locator("#invite #id_email").fill("colleague@example.com")
    page.locator("#invite #id_role").select_option("billing")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_text("We emailed an invitation to colleague@example.com")).to_be_visible()
    expect(page.locator("#invitations")).to_contain_text("colleague@example.com (billing)")

    colleague = browser.new_context(base_url=live_server.url).new_page()
    colleague.set_default_timeout(15_000)
    try:
        colleague.goto(invitation_link("colleague@example.com"))
        expect(colleague.get_by_role("heading", name="Join Boss Co")).to_be_visible()
        expect(colleague.locator("#invited-role")).to_have_text("billing")
        colleague.get_by_label("Password").fill(PASSWORD)
        colleague.get_by_role("button", name="Accept and sign up").click()
        colleague.wait_for_url(re.compile(r"/$"))
        expect(colleague.get_by_text("Welcome to Boss Co: you are billing here.")).to_be_visible()
        assert colleague.locator("#customer-id").inner_text() == customer.customer_id
        expect(colleague.get_by_text("colleague@example.com (billing)")).to_be_visible()
        assert other_membership.customer.customer_id not in colleague.content()

        # The link worked once.
        colleague.goto(invitation_link("colleague@example.com"))
        expect(
            colleague.get_by_role("heading", name="This invitation was used already")
        ).to_be_visible()
    finally:
        colleague.context.close()

    assert Membership.objects.get(user__email="colleague@example.com").role == "billing"
    page.reload()
    expect(page.locator('[data-member="colleague@example.com"]')).to_be_visible()
