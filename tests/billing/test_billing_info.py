"""One Stripe customer per customer account, whatever happens."""

import threading

import pytest
from django.db import connection

from billing import errors, gateway
from billing.cards import billing_info_ensure
from billing.models import BillingInfo, CustomerBilling


def stripe_customers(stripe_client):
    return stripe_client.v1.customers.list({"limit": 100}).data


def test_creates_the_stripe_customer_with_our_id(membership, other_membership, stripe_client):
    billing_info = billing_info_ensure(customer=membership.customer, email="owner@example.com")

    [stripe_customer] = stripe_customers(stripe_client)
    assert billing_info.stripe_id == stripe_customer.id
    assert stripe_customer.metadata["customer_id"] == membership.customer.customer_id
    assert stripe_customer.email == "owner@example.com"
    assert not CustomerBilling.objects.filter(customer=other_membership.customer).exists()


def test_second_call_reuses_it_without_asking_stripe(membership, stripe_client, monkeypatch):
    first = billing_info_ensure(customer=membership.customer, email="owner@example.com")
    monkeypatch.setattr(gateway, "client", lambda: pytest.fail("asked Stripe again"))

    assert billing_info_ensure(customer=membership.customer, email="owner@example.com") == first


def test_each_customer_account_gets_its_own(membership, other_membership, stripe_client):
    mine = billing_info_ensure(customer=membership.customer, email="owner@example.com")
    theirs = billing_info_ensure(
        customer=other_membership.customer, email="someone-else@example.com"
    )
    assert mine != theirs
    assert len(stripe_customers(stripe_client)) == 2


def test_a_lost_link_is_found_again_by_metadata(membership, other_membership, stripe_client):
    first = billing_info_ensure(customer=membership.customer, email="owner@example.com")
    billing_info_ensure(customer=other_membership.customer, email="someone-else@example.com")
    CustomerBilling.objects.filter(customer=membership.customer).delete()
    BillingInfo.objects.filter(pk=first.pk).delete()

    again = billing_info_ensure(customer=membership.customer, email="owner@example.com")

    assert again.stripe_id == first.stripe_id
    assert len(stripe_customers(stripe_client)) == 2


def test_stripe_down_leaves_nothing_and_the_retry_makes_one_customer(
    membership, stripe_emulator, stripe_client
):
    stripe_emulator.faults.add(
        {"kind": "error_500", "method": "POST", "path": "/v1/customers", "count": 5}
    )

    with pytest.raises(errors.GatewayUnavailable) as error:
        billing_info_ensure(customer=membership.customer, email="owner@example.com")
    assert "Nothing was changed" in error.value.user_message
    assert not CustomerBilling.objects.exists()
    assert not BillingInfo.objects.exists()

    stripe_emulator.faults.clear()
    billing_info = billing_info_ensure(customer=membership.customer, email="owner@example.com")
    assert [c.id for c in stripe_customers(stripe_client)] == [billing_info.stripe_id]


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_clicks_make_one_stripe_customer(
    membership, other_membership, stripe_client
):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (CI runs it there)")
    barrier = threading.Barrier(20)
    results, errors = [], []

    def click():
        try:
            barrier.wait()
            results.append(
                billing_info_ensure(customer=membership.customer, email="owner@example.com")
            )
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({billing_info.stripe_id for billing_info in results}) == 1
    assert len(stripe_customers(stripe_client)) == 1
    assert BillingInfo.objects.count() == 1
