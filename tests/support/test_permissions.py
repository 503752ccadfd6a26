"""Who may use the console: read-only staff see every page and every action is refused to
them; staff without the Support groups and customers reach no support URL; nobody acts
on a staff member's account or on an erased one."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import Entry
from support.actions import ACTIONS
from support.models import Erasure
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.support.test_every_post_is_audited import fingerprint

VALID = {
    "trial_extend": {"trial_ends_on": (timezone.now() + timedelta(days=40)).date()},
    "invoice_retry": {"invoice": 1, "card": "pm_x"},
    "invoice_void": {"invoice": 1},
    "plan_change": {"plan": "pro"},
    "coupon_apply": {"coupon": "SPRING20"},
    "event_replay": {"event": "evt_x"},
    "clock_advance": {"days": "1"},
}


def every_url(customer) -> list[tuple[str, str, dict]]:
    """(method, url, data) of every support URL."""
    page = reverse("support:customer", args=[customer.customer_id])
    urls = [("get", reverse("support:search"), {"q": "owner"}), ("get", page, {})]
    for name in ACTIONS:
        url = reverse("support:action", args=[customer.customer_id, name])
        data = {**VALID.get(name, {}), "reason": "because", "confirm": customer.customer_id}
        urls += [("post", url, data), ("get", url, {})]
    return urls


def test_read_only_staff_view_but_every_action_is_refused(
    membership, other_membership, read_only_client
):
    customer = membership.customer
    page = read_only_client.get(reverse("support:customer", args=[customer.customer_id]))
    assert page.status_code == 200
    assert "read-only access" in page.content.decode()
    assert 'data-action="trial_extend"' not in page.content.decode()
    assert read_only_client.get(reverse("support:search"), {"q": "example"}).status_code == 200

    before = fingerprint()
    for name in ACTIONS:
        if name == "view_as":
            continue  # a view, not an action: below
        url = reverse("support:action", args=[customer.customer_id, name])
        data = {**VALID.get(name, {}), "reason": "because", "confirm": customer.customer_id}
        response = read_only_client.post(url, data)
        assert response.status_code == 403, name
        assert "not act on it" in response.content.decode(), name
    assert fingerprint() == before
    assert Entry.objects.filter(actor=read_only_client.user).count() == 0


def test_read_only_staff_may_view_as_the_customer_and_it_is_recorded(membership, read_only_client):
    url = reverse("support:action", args=[membership.customer.customer_id, "view_as"])
    assert read_only_client.post(url, {"reason": "ticket 42"}).status_code == 200
    [entry] = Entry.objects.filter(actor=read_only_client.user)
    assert entry.kind == "support_view_as"


@pytest.mark.parametrize("who", ["customer", "anonymous", "staff_without_group"])
def test_nobody_else_reaches_any_support_url(client, membership, other_membership, who):
    if who == "customer":
        client.force_login(membership.user)
    elif who == "staff_without_group":
        client.force_login(UserFactory(is_staff=True))
    before = fingerprint()
    for method, url, data in every_url(membership.customer):
        response = getattr(client, method)(url, data)
        if who == "staff_without_group":
            assert response.status_code in (403, 405), (url, response.status_code)
        else:
            assert response.status_code == 302, (url, response.status_code)
            assert response.url.startswith(reverse("admin:login")), url
    assert fingerprint() == before


def test_no_action_on_a_staff_members_account(membership, support_client):
    colleague = MembershipFactory(user__is_staff=True)
    url = reverse("support:action", args=[colleague.customer.customer_id, "suspend"])
    response = support_client.post(url, {"reason": "test"})
    assert response.status_code == 403
    assert "This is a staff member" in response.content.decode()
    colleague.customer.refresh_from_db()
    assert colleague.customer.suspended_at is None


def test_no_action_on_an_erased_account(membership, support_client):
    Erasure.objects.create(customer_id=membership.customer.pk, erased_at=timezone.now())
    url = reverse("support:action", args=[membership.customer.customer_id, "suspend"])
    response = support_client.post(url, {"reason": "test"})
    assert response.status_code == 403
    assert "erased" in response.content.decode()
    assert Entry.objects.filter(actor=support_client.user).count() == 0


def test_actions_take_a_post_only(membership, support_client):
    url = reverse("support:action", args=[membership.customer.customer_id, "suspend"])
    assert support_client.get(url).status_code == 405
    unknown = reverse("support:action", args=[membership.customer.customer_id, "explode"])
    assert support_client.post(unknown, {"reason": "x"}).status_code == 404
