"""The support page: found from the admin's search and the customer's admin page, showing
everything from our database with no Stripe call, in the same number of queries for 1 as
for 50 invoices, cards and timeline entries, and the timeline in plain sentences."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.admin.utils import quote
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.ledger import Source, entry_record
from billing.cards import billing_info_ensure, payment_method_sync
from billing.invoicing import current_invoice_ensure
from billing.models import BillingInfo, Invoice, PaymentMethod, StripeEvent
from licensing.catalog import catalog_read
from licensing.licenses import license_refresh
from licensing.services import catalog_load
from tests.billing.test_cards import DISTINCT_CARDS, add_card
from tests.billing.test_invoice_pages import finalized_invoices
from tests.billing.test_invoicing import NOW, on_plan, use


def page_url(customer) -> str:
    return reverse("support:customer", args=[customer.customer_id])


@pytest.fixture
def paying(membership, other_membership, stripe_emulator, stripe_client):
    """Acme on Pro with a Stripe customer, a card, use and an invoice in progress; Globex
    has data of its own, which must not show."""
    catalog_load(catalog=catalog_read())
    customer = membership.customer
    info = billing_info_ensure(customer=customer, email="owner@example.com")
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": info.stripe_id})
    payment_method_sync(stripe_id=pm.id)
    on_plan(customer, "pro", start=NOW - timedelta(days=10), end=NOW + timedelta(days=20))
    use(customer, 150_000, NOW - timedelta(days=1))
    current_invoice_ensure(customer=customer)
    license_refresh(customer=customer)
    other = other_membership.customer
    on_plan(other, "starter", start=NOW - timedelta(days=10), end=NOW + timedelta(days=20))
    current_invoice_ensure(customer=other)
    return customer


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def test_the_page_shows_the_account_from_our_database(paying, support_client, stripe_emulator):
    finalized_invoices(paying, 2)
    stripe_emulator.http.requests.clear()
    response = support_client.get(page_url(paying))
    assert response.status_code == 200
    assert stripe_emulator.http.requests == []
    page = response.content.decode()
    info = BillingInfo.objects.for_customer(paying)
    for shown in [
        "owner@example.com", "Owner", "Acme Ltd", info.stripe_id, "Pro", "Active",
        "Visa ending 4242", "ACME-0001", "https://invoice.example/in_1", "api_calls",
        "150000", "License issued",
    ]:  # fmt: skip
        assert shown in page, shown
    assert "Card Visa ending 4242 added by Stripe" in page
    assert "someone-else@example.com" not in page
    assert "Globex" not in page


def test_the_page_makes_the_same_queries_for_1_and_for_50_of_everything(
    paying, support_client, stripe_emulator, stripe_client, django_assert_num_queries
):
    info = BillingInfo.objects.for_customer(paying)

    def render() -> int:
        stripe_emulator.http.requests.clear()
        with CaptureQueriesContext(connection) as queries:
            response = support_client.get(page_url(paying))
        assert response.status_code == 200
        assert stripe_emulator.http.requests == []
        return len(queries)

    finalized_invoices(paying, 1)
    StripeEvent.objects.create(
        event_id="evt_one", type="customer.updated", object_type="customer",
        object_id=info.stripe_id, stripe_created=NOW,
    )  # fmt: skip
    one = render()

    for name in DISTINCT_CARDS[1:]:
        pm = stripe_client.v1.payment_methods.attach(
            f"pm_card_{name}", {"customer": info.stripe_id}
        )
        payment_method_sync(stripe_id=pm.id)
    # Beyond the emulator's distinct test cards: rows of ours with no mirror yet.
    PaymentMethod.objects.bulk_create(
        PaymentMethod(billing_info=info, stripe_id=f"pm_more{n}", order=10 + n) for n in range(40)
    )
    Invoice.objects.filter(customer=paying, status=Invoice.Status.FINALIZED).delete()
    finalized_invoices(paying, 50)
    for n in range(50):
        entry_record(
            customer_id=paying.pk, kind="card_removed", source=Source.CUSTOMER,
            sentence="Card removed.", data={"payment_method": f"pm_gone{n}"},
        )  # fmt: skip
        StripeEvent.objects.create(
            event_id=f"evt_{n}", type="invoice.paid", object_type="invoice",
            object_id=f"in_{n + 1}", stripe_created=NOW,
        )  # fmt: skip
        license_refresh(customer=paying, force=True)
    assert PaymentMethod.objects.for_customer(paying).count() == 50
    fifty = render()
    assert one == fifty
    with django_assert_num_queries(one):
        support_client.get(page_url(paying))


@pytest.mark.parametrize("how", ["email", "EMAIL", "cust", "cus", "number", "in"])
def test_admin_search_finds_the_customer_and_opens_their_page(
    paying, support_client, other_membership, how
):
    finalized_invoices(paying, 1)
    query = {
        "email": "owner@example.com",
        "EMAIL": "OWNER@EXAMPLE.COM",
        "cust": paying.customer_id,
        "cus": BillingInfo.objects.for_customer(paying).stripe_id,
        "number": "ACME-0001",
        "in": "in_1",
    }[how]
    response = support_client.get(reverse("support:search"), {"q": query})
    assert response.status_code == 302
    assert response.url == page_url(paying)


def test_a_search_with_several_matches_lists_them(paying, support_client, other_membership):
    response = support_client.get(reverse("support:search"), {"q": "example.com"})
    assert response.status_code == 200
    page = response.content.decode()
    assert paying.customer_id in page and other_membership.customer.customer_id in page
    nothing = support_client.get(reverse("support:search"), {"q": "nobody@nowhere.test"})
    assert "No customer matches" in nothing.content.decode()


def test_the_admin_index_and_customer_admin_lead_to_the_support_page(paying, support_client):
    response = support_client.get(reverse("admin:index"))
    index = response.content.decode()
    assert 'id="support-search"' in index
    # What support needs first: customers, then invoices and the webhook log; no sign-in logs.
    apps = response.context["app_list"]
    assert [m["object_name"] for m in apps[0]["models"]][:1] == ["Customer"]
    billing = next(app for app in apps if app["app_label"] == "billing")
    assert [m["object_name"] for m in billing["models"]][:2] == ["Invoice", "StripeEvent"]
    assert "axes" not in {app["app_label"] for app in apps}
    assert "djstripe" not in {app["app_label"] for app in apps}
    change = reverse("admin:accounts_customer_change", args=[quote(paying.customer_id)])
    response = support_client.get(change)
    assert response.status_code == 200
    assert f'href="{page_url(paying)}"' in response.content.decode()
    listing = support_client.get(reverse("admin:accounts_customer_changelist"))
    assert f'href="{page_url(paying)}"' in listing.content.decode()


def test_the_support_page_works_with_billing_disabled(membership, support_client, settings):
    settings.BILLING_ENABLED = False
    settings.STRIPE_SECRET_KEY = ""
    license_refresh(customer=membership.customer)
    response = support_client.get(page_url(membership.customer))
    assert response.status_code == 200
    assert "owner@example.com" in response.content.decode()


def test_an_unknown_customer_is_a_404(support_client):
    assert support_client.get(reverse("support:customer", args=["cust_nope0"])).status_code == 404


def test_a_customer_added_card_reads_as_a_sentence(
    signed_in_client, membership, stripe_emulator, support_client
):
    add_card(signed_in_client, stripe_emulator)
    page = support_client.get(page_url(membership.customer)).content.decode()
    assert "Card Visa ending 4242 added by the customer" in page
    assert "pm_" not in page.split('id="timeline"')[1].split("</section>")[0]


def test_the_webhook_log_is_filtered_by_customer(paying, support_client, other_membership):
    info = BillingInfo.objects.for_customer(paying)
    ours = StripeEvent.objects.create(
        event_id="evt_ours", type="customer.updated", object_type="customer",
        object_id=info.stripe_id, stripe_created=NOW,
    )  # fmt: skip
    StripeEvent.objects.create(
        event_id="evt_theirs", type="customer.updated", object_type="customer",
        object_id="cus_another", stripe_created=NOW,
    )  # fmt: skip
    page = support_client.get(reverse("support:customer", args=[paying.customer_id]))
    link = f"{reverse('admin:billing_stripeevent_changelist')}?q={paying.customer_id}"
    assert link in page.content.decode()
    listing = support_client.get(link)
    assert listing.status_code == 200
    shown = [event.pk for event in listing.context["cl"].result_list]
    assert shown == [ours.pk]
