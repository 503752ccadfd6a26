"""The portal's one audit ledger: written by accounts (signup), licensing (each license),
billing (cards, plans) and staff actions (naming the staff member), read on /billing/ and in
the admin, and append-only."""

from datetime import timedelta

import pytest
from django.urls import reverse

from audit.models import Entry
from licensing.services import customer_start, customer_trial_set


@pytest.fixture
def started(db, catalog):
    return customer_start(email="new@example.com", password="a-long-passphrase-9")


@pytest.fixture
def catalog(db):
    from licensing.catalog import catalog_read
    from licensing.services import catalog_load

    catalog_load(catalog=catalog_read())


def test_signup_and_its_license_are_in_the_ledger(started, other_membership):
    entries = list(Entry.objects.filter(customer=started.customer).order_by("id"))

    assert [(e.kind, e.source) for e in entries] == [
        ("account_opened", "customer"),
        ("license_issued", "system"),
    ]
    assert entries[0].actor == started.user
    assert entries[0].sentence.startswith("Account opened; the free trial runs until ")
    assert entries[1].sentence.startswith("License issued: trial, trialing, valid until ")
    assert not Entry.objects.filter(customer=other_membership.customer).exists()


def test_a_staff_change_names_the_staff_member(started, admin_user):
    new_end = started.customer.trial_ends_at + timedelta(days=7)
    customer_trial_set(customer=started.customer, trial_ends_at=new_end, actor=admin_user)

    entry = Entry.objects.get(kind="trial_moved")
    assert (entry.source, entry.actor) == ("staff", admin_user)
    assert entry.sentence.startswith("Free trial now ends on ")


def test_the_ledger_is_append_only(started, admin_client):
    entry = Entry.objects.filter(customer=started.customer).first()
    entry.sentence = "Something else."
    with pytest.raises(ValueError, match="append-only"):
        entry.save()

    change = reverse("admin:audit_entry_change", args=[entry.pk])
    assert admin_client.post(change, {"sentence": "x"}).status_code == 403
    assert (
        admin_client.post(reverse("admin:audit_entry_delete", args=[entry.pk])).status_code == 403
    )
    page = admin_client.get(reverse("admin:audit_entry_changelist")).content.decode()
    assert "Account opened; the free trial runs until" in page


def test_the_billing_page_shows_the_sentences(client, started, settings):
    settings.BILLING_ENABLED = True
    client.force_login(started.user)

    page = client.get(reverse("billing:overview")).content.decode()
    assert "Account opened; the free trial runs until" in page
