"""A support person in a real browser: signs in to the admin, finds a customer by email
from the admin's index, extends their trial with a reason on the support page, and sees
the entry in the timeline."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from accounts.models import Customer
from support.permissions import SUPPORT_GROUP, support_groups_ensure
from tests.accounts.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.browser


def test_support_finds_a_customer_by_email_and_extends_the_trial(page, live_server):
    customer = MembershipFactory(
        user__email="stuck@customer.example", customer__name="Stuck Ltd"
    ).customer
    MembershipFactory(user__email="other@customer.example")
    support_groups_ensure()
    staff = UserFactory(email="support@example.com", is_staff=True)
    staff.groups.add(Group.objects.get(name=SUPPORT_GROUP))
    new_end = (customer.trial_ends_at + timedelta(days=20)).date()

    page.goto("/admin/")
    page.get_by_label("Email").fill("support@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Find a customer").fill("stuck@customer.example")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(rf"/admin/support/{customer.customer_id}/$"))
    expect(page.locator("#members")).to_contain_text("stuck@customer.example")

    trial = page.locator('form[data-action="trial_extend"]')
    trial.get_by_label("New end of the trial (UTC)").fill(new_end.isoformat())
    trial.get_by_label("Reason: Extend the trial").fill("customer asked for more time")
    trial.get_by_role("button", name="Extend the trial").click()

    page.wait_for_url(re.compile(rf"/admin/support/{customer.customer_id}/$"))
    sentence = (
        f"Trial extended to {new_end:%-d %B %Y} by support@example.com: customer asked for "
        "more time"
    )
    expect(page.locator("#timeline-entries")).to_contain_text(sentence)
    expect(page.locator("#trial")).to_contain_text(f"{new_end:%-d %B %Y}")
    assert Customer.objects.get(pk=customer.pk).trial_ends_at.date() == new_end
    assert Customer.objects.get(pk=customer.pk).trial_ends_at > customer.trial_ends_at
