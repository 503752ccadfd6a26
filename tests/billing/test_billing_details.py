"""Billing details: read live from Stripe, written to Stripe, kept nowhere here."""

import pytest
from django.urls import reverse

from audit.models import Entry
from billing.cards import billing_info_ensure

DETAILS_URL = reverse("billing:details")
DETAILS = {
    "name": "Ada Lovelace Ltd",
    "email": "invoices@ada.example",
    "line1": "12 Analytical Street",
    "line2": "",
    "city": "London",
    "postal_code": "N1 7AA",
    "state": "",
    "country": "gb",
    "vat_number": "GB 123 456 789",
}


def save(client, **overrides):
    page = client.get(DETAILS_URL)
    data = {**DETAILS, **overrides, "attempt": page.context["form"]["attempt"].value()}
    return client.post(DETAILS_URL, data)


def test_details_are_written_to_stripe(signed_in_client, membership, stripe_client):
    response = save(signed_in_client)
    assert response.status_code == 302

    stripe_id = membership.customer.billing.billing_info.stripe_id
    customer = stripe_client.v1.customers.retrieve(stripe_id)
    assert customer.name == "Ada Lovelace Ltd"
    assert customer.email == "invoices@ada.example"
    assert customer.address.line1 == "12 Analytical Street"
    assert customer.address.country == "GB"
    [tax_id] = stripe_client.v1.customers.tax_ids.list(stripe_id).data
    assert (tax_id.type, tax_id.value) == ("gb_vat", "GB123456789")
    assert Entry.objects.filter(customer=membership.customer, kind="details_updated").exists()


def test_details_are_read_back_live_from_stripe(signed_in_client, membership, stripe_client):
    save(signed_in_client)
    stripe_id = membership.customer.billing.billing_info.stripe_id
    stripe_client.v1.customers.update(stripe_id, {"name": "Changed at Stripe"})

    form = signed_in_client.get(DETAILS_URL).context["form"]
    assert form["name"].value() == "Changed at Stripe"
    assert form["vat_number"].value() == "GB123456789"
    assert form["city"].value() == "London"


def test_changing_the_vat_number_replaces_it(signed_in_client, membership, stripe_client):
    save(signed_in_client)
    save(signed_in_client, vat_number="DE123456789", country="DE")
    stripe_id = membership.customer.billing.billing_info.stripe_id
    values = [t.value for t in stripe_client.v1.customers.tax_ids.list(stripe_id).data]
    assert values == ["DE123456789"]


def test_first_visit_without_a_stripe_customer_asks_stripe_nothing(
    signed_in_client, stripe_emulator
):
    stripe_emulator.http.requests.clear()
    response = signed_in_client.get(DETAILS_URL)
    assert response.status_code == 200
    assert response.context["form"]["email"].value() == "owner@example.com"
    assert stripe_emulator.http.requests == []


def test_invalid_country_is_a_form_error_and_nothing_is_sent(
    signed_in_client, membership, stripe_emulator
):
    stripe_emulator.http.requests.clear()
    response = save(signed_in_client, country="Germany")
    assert response.status_code == 200
    assert "two-letter country code" in response.content.decode()
    assert not [r for r in stripe_emulator.http.requests if r[0] == "POST"]


def test_stripe_down_keeps_the_form_with_a_message(signed_in_client, membership, stripe_emulator):
    billing_info_ensure(customer=membership.customer, email="owner@example.com")
    stripe_emulator.faults.add({"kind": "error_500", "method": "POST", "count": 5})
    response = save(signed_in_client)
    assert response.status_code == 200
    assert "not responding right now" in response.content.decode()
    assert response.context["form"]["name"].value() == "Ada Lovelace Ltd"


@pytest.mark.parametrize("method", ["get", "post"])
def test_details_page_answers_501_without_billing(signed_in_client, method):
    response = getattr(signed_in_client, method)(DETAILS_URL)
    assert response.status_code == 501


@pytest.mark.parametrize("vat_number", ["DE1", "XX123456789", "GB12345"])
def test_an_invalid_vat_number_from_stripe_shows_on_its_field(
    signed_in_client, membership, stripe_client, vat_number
):
    save(signed_in_client)
    response = save(signed_in_client, vat_number=vat_number, name="Renamed Ltd")

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["vat_number"][0].startswith("Invalid value for ")
    # The old number stays, and nothing else was written either.
    stripe_id = membership.customer.billing.billing_info.stripe_id
    assert [t.value for t in stripe_client.v1.customers.tax_ids.list(stripe_id).data] == [
        "GB123456789"
    ]
    assert stripe_client.v1.customers.retrieve(stripe_id).name == "Ada Lovelace Ltd"
