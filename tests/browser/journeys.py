"""Steps several browser journeys share."""

import re
from urllib.parse import urlsplit

from django.core import mail
from playwright.sync_api import expect

PASSWORD = "a-long-and-unusual-passphrase"


def confirmation_link(email: str) -> str:
    """The path of the confirmation link in the newest email to `email` (the portal's
    in-memory outbox: the live server runs in this process)."""
    message = [m for m in mail.outbox if m.to == [email] and "/accounts/verify/" in m.body][-1]
    return urlsplit(re.search(r"https?://\S+/accounts/verify/\S+/", message.body).group(0)).path


def sign_up_and_confirm(page, email: str, company_name: str = "") -> None:
    """Sign up, follow the link from the welcome email, and land signed in at home."""
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    if company_name:
        page.get_by_label("Company name").fill(company_name)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()

    page.goto(confirmation_link(email))
    page.get_by_role("button", name="Confirm my email address").click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.get_by_text(f"{email} is confirmed")).to_be_visible()
