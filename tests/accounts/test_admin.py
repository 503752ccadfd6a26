import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from tests.accounts.factories import MembershipFactory, UserFactory


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("query", ["owner@example.com", "OWNER@example", "customer_id"])
def test_support_finds_a_customer_by_email_or_id(staff_client, membership, other_membership, query):
    if query == "customer_id":
        query = membership.customer.customer_id
    response = staff_client.get(reverse("admin:accounts_customer_changelist"), {"q": query})
    page = response.content.decode()
    assert response.status_code == 200
    assert membership.customer.customer_id in page
    assert other_membership.customer.customer_id not in page


def test_support_finds_a_user_by_customer_id(staff_client, membership, other_membership):
    response = staff_client.get(
        reverse("admin:accounts_user_changelist"), {"q": membership.customer.customer_id}
    )
    page = response.content.decode()
    assert "owner@example.com" in page
    assert "someone-else@example.com" not in page


def test_customer_change_page_shows_members(staff_client, membership):
    url = reverse("admin:accounts_customer_change", args=[quote(membership.customer.customer_id)])
    response = staff_client.get(url)
    assert response.status_code == 200
    assert "owner@example.com" in response.content.decode()


def test_admin_is_for_staff_only(signed_in_client):
    response = signed_in_client.get(reverse("admin:accounts_customer_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response.url


@pytest.mark.parametrize("digits", ["23", "40", "5f"])
def test_the_changelist_links_to_a_customer_whose_id_looks_quoted(staff_client, digits):
    """The admin reads `_23` or `_40` in a URL as a quoted character, so a link built
    without `quote()` misses about one customer in forty (cust_23…, cust_40…)."""
    membership = MembershipFactory(customer__customer_id=f"cust_{digits}" + "0" * 30)
    listing = staff_client.get(reverse("admin:accounts_customer_changelist")).content.decode()
    url = reverse("admin:accounts_customer_change", args=[quote(membership.customer.pk)])
    assert f'href="{url}"' in listing
    assert staff_client.get(url).status_code == 200
