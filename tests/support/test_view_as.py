"""View as customer: the customer's billing and invoices pages for a staff member, read-only
(no form posts anywhere, every control disabled), recorded in the timeline."""

import re

from django.urls import reverse

from audit.models import Entry
from licensing.catalog import catalog_read
from licensing.services import catalog_load
from tests.billing.test_cards import add_card


def test_view_as_customer_is_read_only_and_recorded(
    signed_in_client, membership, other_membership, stripe_emulator, support_client
):
    catalog_load(catalog=catalog_read())
    add_card(signed_in_client, stripe_emulator)
    url = reverse("support:action", args=[membership.customer.customer_id, "view_as"])
    stripe_emulator.http.requests.clear()
    response = support_client.post(url, {"reason": "customer says the total is wrong"})
    assert response.status_code == 200
    assert stripe_emulator.http.requests == []
    page = response.content.decode()
    assert 'id="view-as-banner"' in page
    assert "free trial" in page  # the customer's own wording
    assert "Visa ending 4242" in page or "ending 4242" in page
    assert "someone-else@example.com" not in page
    # Nothing on it can change anything: no form has a target, every control is disabled.
    assert re.findall(r"<form\b[^>]*>", page)
    for form in re.findall(r"<form\b[^>]*>", page):
        assert "action=" not in form and "method=" not in form, form
    for control in re.findall(r"<(?:button|input|select|textarea)\b[^>]*>", page):
        assert " disabled" in control, control
    assert not re.search(r"<a\b[^>]*href=", page)

    [entry] = Entry.objects.filter(actor=support_client.user)
    assert entry.kind == "support_view_as"
    assert entry.sentence == (
        "Viewed the account as the customer sees it by support@example.com: customer says "
        "the total is wrong"
    )


def test_view_as_needs_a_reason(membership, support_client):
    url = reverse("support:action", args=[membership.customer.customer_id, "view_as"])
    assert support_client.post(url, {}).status_code == 400
    assert not Entry.objects.filter(actor=support_client.user).exists()


def test_view_as_with_billing_disabled_says_what_the_customer_sees(membership, support_client):
    url = reverse("support:action", args=[membership.customer.customer_id, "view_as"])
    response = support_client.post(url, {"reason": "billing is off here"})
    assert response.status_code == 200
    assert "not enabled" in response.content.decode()
