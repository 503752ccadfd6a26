import re

import pytest
from playwright.sync_api import expect

from billing.models import PaymentMethod
from tests.browser.journeys import sign_up_and_confirm

pytestmark = pytest.mark.browser


def add_card(page, label: str) -> None:
    page.goto("/billing/payment-methods/")
    page.get_by_role("button", name="Add a card").click()
    page.get_by_text("Local Stripe emulator").wait_for()
    page.get_by_label(label).check()
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/billing/payment-methods/$"))


def expect_cards(page, names: list[str]) -> None:
    """Waits (as Playwright's expect does) until the page lists exactly these cards."""
    expect(page.locator("#cards .card-name")).to_have_text(names)


def test_signup_add_two_cards_reorder_and_remove(page, stripe_over_http, other_membership):
    sign_up_and_confirm(page, "cards@example.com")

    page.goto("/billing/payment-methods/")
    assert page.locator("#no-cards").is_visible()

    add_card(page, "Visa 4242")
    expect(page.get_by_text("Your card was added.")).to_be_visible()
    expect_cards(page, ["Visa ending 4242"])

    add_card(page, "Mastercard 4444")
    expect_cards(page, ["Visa ending 4242", "Mastercard ending 4444"])

    page.locator(".card-row", has_text="Mastercard").get_by_role("button", name="Move up").click()
    expect_cards(page, ["Mastercard ending 4444", "Visa ending 4242"])
    expect(page.locator(".card-row", has_text="Mastercard").get_by_text("Primary")).to_be_visible()

    page.locator(".card-row", has_text="Visa").get_by_role("button", name="Remove").click()
    # Asked once more, with what it changes, before anything is removed.
    expect(page.get_by_role("heading", name="Remove Visa ending 4242?")).to_be_visible()
    expect(page.get_by_text("Your primary card stays as it is.")).to_be_visible()
    page.get_by_role("button", name="Remove the card").click()
    expect(page.get_by_text("The card was removed.")).to_be_visible()
    expect_cards(page, ["Mastercard ending 4444"])

    [card] = PaymentMethod.objects.filter(
        billing_info__customer_links__customer__memberships__user__email="cards@example.com"
    )
    stripe_customer = stripe_over_http.v1.customers.retrieve(card.billing_info.stripe_id)
    assert stripe_customer.invoice_settings.default_payment_method == card.stripe_id
    assert len(stripe_over_http.v1.payment_methods.list({"customer": stripe_customer.id}).data) == 1


def test_cancelling_checkout_comes_back_with_nothing_added(
    page, stripe_over_http, other_membership
):
    sign_up_and_confirm(page, "cancel@example.com")

    page.goto("/billing/payment-methods/")
    page.get_by_role("button", name="Add a card").click()
    page.get_by_role("link", name="Cancel and go back").click()
    page.wait_for_url(re.compile(r"/billing/payment-methods/$"))

    expect(page.get_by_text("No card was added.")).to_be_visible()
    expect(page.locator("#no-cards")).to_be_visible()
