"""GDPR end to end through the emulator: the export holds what we and Stripe hold about the
account's people; after the erasure a dump of every table holds none of their emails,
names or company name, Stripe's customer is cleared, and after restoring a backup taken
before it, the erasure applied again from the kept record removes them again."""

import json
from io import StringIO

import pytest
from axes.models import AccessLog
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Customer, Membership, User
from audit.models import Entry
from billing import gateway
from billing.models import BillingInfo, Invoice, StripeEvent
from licensing.licenses import license_refresh
from licensing.models import CustomerPlan, License
from support.models import Erasure
from tests.accounts.factories import UserFactory
from tests.billing.test_billing_details import save as save_details
from tests.billing.test_cards import add_card
from tests.billing.test_invoice_sync import on_pro  # noqa: F401
from tests.billing.test_personal_data import database_dump
from tests.billing.test_plans import catalog, clock  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # the erasure log is written on commit

DETAILS = {"name": "Ada Lovelace Analytics", "email": "invoices@lovelace.example",
           "phone": "+44 20 7946 0101", "line1": "12 Engine Row", "city": "Marylebone"}  # fmt: skip


@pytest.fixture
def erasure_log(settings, tmp_path):
    settings.ERASURE_LOG_PATH = tmp_path / "erasures.jsonl"
    return settings.ERASURE_LOG_PATH


@pytest.fixture
def account(signed_in_client, membership, other_membership, stripe_emulator, stripe_client):
    """Acme Ltd, with a second member, a card, billing details at Stripe, a license and
    the traces of sign-ins; Globex is another account, which must keep its person."""
    customer = membership.customer
    billing = UserFactory(email="billing.person@acme.example")
    Membership.objects.create(user=billing, customer=customer, role=Membership.Role.BILLING)
    add_card(signed_in_client, stripe_emulator)
    assert save_details(signed_in_client, **DETAILS).status_code == 302
    stripe_emulator.deliver()
    license_refresh(customer=customer)
    AccessLog.objects.create(
        username="owner@example.com", ip_address="203.0.113.7", user_agent="test"
    )
    return customer


PEOPLE = ["owner@example.com", "billing.person@acme.example", "Acme Ltd", *DETAILS.values()]


def act(client, customer, name, **data):
    return client.post(reverse("support:action", args=[customer.customer_id, name]), data)


def test_export_is_one_json_document_of_ours_and_stripes(account, support_client):
    response = act(support_client, account, "export", reason="subject access request")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    export = json.loads(response.content)
    assert export["account"]["company_name"] == "Acme Ltd"
    assert {m["email"] for m in export["members"]} == {
        "owner@example.com", "billing.person@acme.example",
    }  # fmt: skip
    assert export["billing_details"]["name"] == DETAILS["name"]  # read from Stripe
    assert export["billing_details"]["city"] == DETAILS["city"]
    assert export["cards"][0]["last4"] == "4242"
    assert export["licenses"] and export["timeline"]
    assert "someone-else@example.com" not in response.content.decode()
    [entry] = Entry.objects.filter(actor=support_client.user)
    assert entry.kind == "support_export"
    assert entry.data["stripe_request_ids"]


def test_erase_then_restore_and_erase_again(
    account, signed_in_client, support_client, stripe_client, stripe_emulator, erasure_log, tmp_path
):
    stripe_id = BillingInfo.objects.for_customer(account).stripe_id
    Invoice.objects.create(
        customer=account, plan_id=None or _any_plan(), currency="eur",
        period_start="2026-01-01T00:00:00Z", period_end="2026-02-01T00:00:00Z",
        status=Invoice.Status.FINALIZED, subscription_id="sub_x", stripe_invoice_id="in_kept",
        number="ACME-0007", total=4900,
    )  # fmt: skip
    # A reason that names the person, as staff might type it.
    act(support_client, account, "license_reissue", reason="owner@example.com lost it")
    backup = tmp_path / "backup.json"
    call_command(
        "dumpdata", f"--output={backup}", verbosity=0,
    )  # fmt: skip
    dump = database_dump()
    assert all(text in dump for text in ["owner@example.com", "Acme Ltd"])

    response = act(
        support_client, account, "erase", confirm=account.customer_id, reason="GDPR art. 17"
    )
    assert response.status_code == 302
    [erase_entry] = Entry.objects.filter(kind="support_erase")
    assert erase_entry.data["outcome"] == "succeeded", erase_entry.sentence
    _assert_erased(account, stripe_id)
    # Their sessions ended: the owner's browser is signed out.
    assert signed_in_client.get(reverse("billing:overview")).status_code == 302
    # Nothing was owed and nothing will bill: Stripe's customer is deleted, not just cleared.
    stripe_customer = stripe_client.v1.customers.retrieve(stripe_id)
    assert stripe_customer.to_dict() == {"id": stripe_id, "object": "customer", "deleted": True}
    assert Erasure.objects.get().stripe_customers_deleted == [stripe_id]
    assert "the Stripe customer deleted: nothing was owed" in erase_entry.sentence
    stripe_emulator.deliver()  # customer.deleted: processed like any other event
    assert [e.status for e in StripeEvent.objects.filter(type="customer.deleted")] == ["processed"]
    # What the law keeps: the invoice's number and amount, with nobody in it.
    kept = Invoice.objects.get(number="ACME-0007")
    assert (kept.total, kept.customer_id) == (4900, account.customer_id)
    assert Customer.objects.get(pk=account.pk).name == ""
    # The erasure is recorded in the timeline too, by whom and why.
    assert erase_entry.actor == support_client.user
    # Nothing more may be done to the account.
    assert act(support_client, account, "suspend", reason="x").status_code == 403

    # A backup from before the erasure comes back...
    call_command("flush", interactive=False, inhibit_post_migrate=True, verbosity=0)
    call_command("loaddata", str(backup), verbosity=0)
    assert "owner@example.com" in database_dump()
    assert not Erasure.objects.exists()
    # ... and the kept record erases them again.
    out = StringIO()
    call_command("erasures_reapply", stdout=out)
    assert "1 erasure(s) applied" in out.getvalue()
    _assert_erased(account, stripe_id)
    assert Erasure.objects.get(customer_id=account.customer_id).stripe_customers_deleted == [
        stripe_id
    ]


def _any_plan():
    from licensing.catalog import catalog_read
    from licensing.models import Plan
    from licensing.services import catalog_load

    catalog_load(catalog=catalog_read())
    return Plan.objects.get(code="pro").pk


def _assert_erased(account, stripe_id) -> None:
    dump = database_dump()
    for text in PEOPLE:
        where = [line[:60] for line in dump.splitlines() if text in line]
        assert text not in dump, f"{text!r} is still in the database: {where}"
    assert "someone-else@example.com" in dump  # another account's person stays
    assert "Globex" in dump
    assert stripe_id in dump  # ids stay, so the kept records still join up
    assert not User.objects.filter(email__in=PEOPLE).exists()
    assert not License.objects.filter(customer_id=account.pk, revoked_at__isnull=True).exists()
    record = Erasure.objects.get(customer_id=account.customer_id)
    assert "@" not in json.dumps({"users": record.user_ids, "stripe": record.stripe_customer_ids})


def test_an_unwritable_erasure_log_erases_nothing(
    account, support_client, stripe_client, settings, tmp_path
):
    settings.ERASURE_LOG_PATH = tmp_path / "no-such-dir-file"
    (tmp_path / "no-such-dir-file").mkdir()  # a directory: appending to it fails
    response = act(support_client, account, "erase", confirm=account.customer_id, reason="x")
    assert response.status_code == 302
    [entry] = Entry.objects.filter(kind="support_erase")
    assert entry.data["stripe_request_ids"] == []
    assert entry.data["outcome"] == "failed"
    assert "erasure log" in entry.sentence
    assert User.objects.filter(email="owner@example.com").exists()
    assert Customer.objects.get(pk=account.pk).name == "Acme Ltd"
    assert not Erasure.objects.exists()
    stripe_id = BillingInfo.objects.for_customer(account).stripe_id
    assert stripe_client.v1.customers.retrieve(stripe_id).name == DETAILS["name"]


def _erase(support_client, account):
    response = act(support_client, account, "erase", confirm=account.customer_id, reason="art. 17")
    assert response.status_code == 302
    [entry] = Entry.objects.filter(kind="support_erase")
    assert entry.data["outcome"] == "succeeded", entry.sentence
    return entry


def test_a_customer_who_owes_a_balance_is_cleared_not_deleted(
    account, support_client, stripe_client, erasure_log, tmp_path
):
    stripe_id = BillingInfo.objects.for_customer(account).stripe_id
    stripe_client.v1.customers.balance_transactions.create(
        stripe_id, {"amount": 500, "currency": "eur", "description": "owed"}
    )
    backup = tmp_path / "backup.json"
    call_command("dumpdata", f"--output={backup}", verbosity=0)
    entry = _erase(support_client, account)
    assert "details cleared: it still bills or is owed" in entry.sentence
    stripe_customer = stripe_client.v1.customers.retrieve(stripe_id)
    assert not getattr(stripe_customer, "deleted", False)
    assert not (stripe_customer.name or stripe_customer.email or stripe_customer.phone)
    assert not stripe_customer.address and stripe_customer.balance == 500
    record = Erasure.objects.get()
    assert (record.stripe_customer_ids, record.stripe_customers_deleted) == ([stripe_id], [])
    _assert_erased(account, stripe_id)
    call_command("flush", interactive=False, inhibit_post_migrate=True, verbosity=0)
    call_command("loaddata", str(backup), verbosity=0)
    call_command("erasures_reapply", stdout=StringIO())
    _assert_erased(account, stripe_id)


def test_a_customer_whose_plan_still_bills_keeps_its_stripe_customer(
    on_pro,  # noqa: F811
    membership,
    support_client,
    stripe_client,
    erasure_log,
):
    account = membership.customer
    stripe_id = BillingInfo.objects.for_customer(account).stripe_id
    entry = _erase(support_client, account)
    assert "details cleared" in entry.sentence
    stripe_customer = stripe_client.v1.customers.retrieve(stripe_id)
    assert not getattr(stripe_customer, "deleted", False) and not stripe_customer.email
    subscription = stripe_client.v1.subscriptions.retrieve(on_pro.subscription_id)
    assert subscription.status == "active"  # not canceled by a deletion
    assert Erasure.objects.get().stripe_customers_deleted == []


def test_deleting_a_deleted_customer_again_is_a_no_op(account, stripe_client):
    stripe_id = BillingInfo.objects.for_customer(account).stripe_id
    assert gateway.customer_debts(stripe_customer_id=stripe_id).nothing_owed
    gateway.customer_delete(stripe_customer_id=stripe_id)
    gateway.customer_delete(stripe_customer_id=stripe_id)  # a retried erasure
    debts = gateway.customer_debts(stripe_customer_id=stripe_id)
    assert debts.deleted and debts.nothing_owed


def test_a_plan_set_to_end_bills_no_more_so_the_customer_is_deleted_and_it_ends_now(
    on_pro,  # noqa: F811
    membership,
    support_client,
    stripe_client,
    stripe_emulator,
    erasure_log,
):
    from billing.plans import plan_cancel_at_period_end

    account = membership.customer
    stripe_id = BillingInfo.objects.for_customer(account).stripe_id
    plan_cancel_at_period_end(customer=account, cancel=True, source="portal")
    stripe_emulator.deliver()
    entry = _erase(support_client, account)
    assert "the Stripe customer deleted: nothing was owed" in entry.sentence
    assert stripe_client.v1.customers.retrieve(stripe_id).to_dict()["deleted"] is True
    subscription = stripe_client.v1.subscriptions.retrieve(on_pro.subscription_id)
    assert subscription.status == "canceled"  # Stripe ends it at once with the customer
    stripe_emulator.deliver()
    assert CustomerPlan.objects.get(customer=account).status == CustomerPlan.Status.CANCELED
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
