"""Cards end to end through the Stripe emulator: setup-mode Checkout, the return page and
the webhooks in any order, priority order, primary card, removal, and other customers'
cards out of reach."""

from urllib.parse import urlsplit

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import Entry
from billing.cards import billing_info_ensure, payment_method_sync
from billing.models import PaymentMethod
from billing.setup import catalog_push
from licensing.catalog import catalog_read
from licensing.models import Plan

CARDS_URL = reverse("billing:payment_methods")
# Ten test cards of different numbers: the same number twice is one card, listed once.
DISTINCT_CARDS = [
    "visa", "visa_debit", "mastercard", "amex", "discover",
    "diners", "jcb", "unionpay", "mastercard_debit", "mastercard_prepaid",
]  # fmt: skip


def start_add_card(client) -> str:
    page = client.get(CARDS_URL)
    response = client.post(
        reverse("billing:payment_method_add"), {"attempt": page.context["attempt"]}
    )
    assert response.status_code == 302
    return response.url


def add_card(client, stripe_emulator, token="pm_card_visa", *, webhooks_first=False) -> str:
    """Add a card as a customer does; returns its pm_ id."""
    before = set(PaymentMethod.objects.values_list("stripe_id", flat=True))
    return_url = stripe_emulator.complete_checkout(start_add_card(client), token)
    if webhooks_first:
        stripe_emulator.deliver()
    parts = urlsplit(return_url)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 302
    assert response.url == CARDS_URL
    stripe_emulator.deliver()
    [added] = set(PaymentMethod.objects.values_list("stripe_id", flat=True)) - before
    return added


def card_order(customer) -> list[str]:
    return list(
        PaymentMethod.objects.for_customer(customer)
        .order_by("order")
        .values_list("stripe_id", flat=True)
    )


def stripe_default(stripe_client, membership) -> str | None:
    stripe_id = membership.customer.billing.billing_info.stripe_id
    return stripe_client.v1.customers.retrieve(stripe_id).invoice_settings.default_payment_method


@pytest.fixture
def other_card(stripe_emulator, other_membership):
    """A card of the other customer, added the way any card is."""
    billing_info = billing_info_ensure(
        customer=other_membership.customer, email="someone-else@example.com"
    )
    pm = stripe_emulator.client.v1.payment_methods.attach(
        "pm_card_mastercard", {"customer": billing_info.stripe_id}
    )
    payment_method_sync(stripe_id=pm.id)
    return pm.id


def test_cards_page_without_cards_invites_to_add_one(signed_in_client, stripe_emulator):
    response = signed_in_client.get(CARDS_URL)
    assert response.status_code == 200
    assert "No card on file yet" in response.content.decode()


def test_add_a_card_through_checkout(signed_in_client, membership, stripe_emulator, stripe_client):
    checkout_url = start_add_card(signed_in_client)
    assert checkout_url.startswith(stripe_emulator.emulator.base_url)

    pm = add_card(signed_in_client, stripe_emulator)

    assert card_order(membership.customer) == [pm]
    assert stripe_default(stripe_client, membership) == pm
    page = signed_in_client.get(CARDS_URL).content.decode()
    assert "Your card was added." in page
    assert "Visa ending 4242" in page
    assert "Primary" in page
    assert Entry.objects.filter(customer=membership.customer, kind="card_added").count() == 1
    stripe_customer = stripe_client.v1.customers.retrieve(
        membership.customer.billing.billing_info.stripe_id
    )
    assert stripe_customer.metadata["customer_id"] == membership.customer.customer_id


def test_webhooks_before_the_return_page_record_the_card_once(
    signed_in_client, membership, stripe_emulator
):
    pm = add_card(signed_in_client, stripe_emulator, webhooks_first=True)
    assert card_order(membership.customer) == [pm]
    assert Entry.objects.filter(kind="card_added").count() == 1


def test_second_card_goes_last_and_the_first_stays_default(
    signed_in_client, membership, stripe_emulator, stripe_client
):
    first = add_card(signed_in_client, stripe_emulator)
    second = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")

    assert card_order(membership.customer) == [first, second]
    assert stripe_default(stripe_client, membership) == first


def test_reorder_make_primary_and_remove(
    signed_in_client, membership, stripe_emulator, stripe_client
):
    first = add_card(signed_in_client, stripe_emulator)
    second = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")
    third = add_card(signed_in_client, stripe_emulator, "pm_card_amex")

    signed_in_client.post(reverse("billing:payment_method_move_down", args=[first]))
    assert card_order(membership.customer) == [second, first, third]
    assert stripe_default(stripe_client, membership) == second

    signed_in_client.post(reverse("billing:payment_method_make_primary", args=[third]))
    assert card_order(membership.customer) == [third, second, first]
    assert stripe_default(stripe_client, membership) == third

    signed_in_client.post(reverse("billing:payment_method_move_up", args=[first]))
    assert card_order(membership.customer) == [third, first, second]

    response = signed_in_client.post(
        reverse("billing:payment_method_remove", args=[third]), {"confirm": "yes"}
    )
    assert response.status_code == 302
    stripe_emulator.deliver()
    assert card_order(membership.customer) == [first, second]
    assert stripe_client.v1.payment_methods.retrieve(third).customer is None
    assert stripe_default(stripe_client, membership) == first
    kinds = list(
        Entry.objects.filter(customer=membership.customer)
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds == [
        "stripe_customer_created",
        "card_added",
        "card_added",
        "card_added",
        "card_made_primary",
        "card_made_primary",
        "card_reordered",
        "card_removed",
    ]


def test_cancelling_checkout_changes_nothing(signed_in_client, membership, stripe_emulator):
    start_add_card(signed_in_client)
    response = signed_in_client.get(reverse("billing:payment_method_cancelled"), follow=True)
    assert "No card was added." in response.content.decode()
    assert card_order(membership.customer) == []


def test_double_submit_of_the_add_form_reuses_one_checkout_session(
    signed_in_client, stripe_emulator, stripe_client
):
    page = signed_in_client.get(CARDS_URL)
    data = {"attempt": page.context["attempt"]}
    first = signed_in_client.post(reverse("billing:payment_method_add"), data)
    second = signed_in_client.post(reverse("billing:payment_method_add"), data)
    assert first.url == second.url
    assert len(stripe_client.v1.checkout.sessions.list().data) == 1


def test_cards_attached_or_detached_at_stripe_follow_through_webhooks(
    signed_in_client, membership, stripe_emulator, stripe_client
):
    first = add_card(signed_in_client, stripe_emulator)
    stripe_customer = membership.customer.billing.billing_info.stripe_id

    attached = stripe_client.v1.payment_methods.attach(
        "pm_card_mastercard", {"customer": stripe_customer}
    )
    stripe_emulator.deliver()
    assert card_order(membership.customer) == [first, attached.id]

    stripe_client.v1.payment_methods.detach(first)
    stripe_emulator.deliver()
    assert card_order(membership.customer) == [attached.id]
    assert stripe_default(stripe_client, membership) == attached.id


@pytest.mark.parametrize("fault", ["webhook_duplicate", "webhook_out_of_order"])
def test_duplicate_or_reordered_webhooks_converge(
    signed_in_client, membership, stripe_emulator, stripe_client, fault
):
    first = add_card(signed_in_client, stripe_emulator)
    stripe_customer = membership.customer.billing.billing_info.stripe_id
    stripe_emulator.faults.add({"kind": fault, "count": 10})

    attached = stripe_client.v1.payment_methods.attach(
        "pm_card_mastercard", {"customer": stripe_customer}
    )
    stripe_client.v1.payment_methods.detach(attached.id)
    stripe_emulator.deliver()

    assert card_order(membership.customer) == [first]
    assert PaymentMethod.objects.filter(stripe_id=attached.id).count() == 0


def test_another_customers_card_is_a_404_and_nothing_changes(
    signed_in_client, membership, stripe_emulator, other_card, stripe_client
):
    mine = add_card(signed_in_client, stripe_emulator)
    for name in [
        "payment_method_move_up",
        "payment_method_move_down",
        "payment_method_make_primary",
        "payment_method_remove",
    ]:
        response = signed_in_client.post(reverse(f"billing:{name}", args=[other_card]))
        assert response.status_code == 404, name

    assert PaymentMethod.objects.get(stripe_id=other_card).order == 0
    assert stripe_client.v1.payment_methods.retrieve(other_card).customer is not None
    assert card_order(membership.customer) == [mine]
    assert other_card not in signed_in_client.get(CARDS_URL).content.decode()


def test_another_customers_checkout_session_on_the_return_page_is_a_404(
    signed_in_client, membership, other_membership, stripe_emulator
):
    add_card(signed_in_client, stripe_emulator)
    other_client = Client()
    other_client.force_login(other_membership.user)
    other_return = stripe_emulator.complete_checkout(start_add_card(other_client))

    parts = urlsplit(other_return)
    response = signed_in_client.get(f"{parts.path}?{parts.query}")

    assert response.status_code == 404
    assert len(card_order(membership.customer)) == 1
    assert card_order(other_membership.customer) == []


@pytest.mark.parametrize("fault", ["error_500", "error_429", "timeout"])
def test_stripe_down_or_slow_shows_a_message_and_the_next_click_works(
    signed_in_client, membership, stripe_emulator, stripe_client, fault
):
    # Three: the first try and stripe-python's two retries.
    stripe_emulator.faults.add({"kind": fault, "path": "/v1/checkout/sessions", "count": 3})
    page = signed_in_client.get(CARDS_URL)
    response = signed_in_client.post(
        reverse("billing:payment_method_add"), {"attempt": page.context["attempt"]}, follow=True
    )
    assert "not responding right now" in response.content.decode()
    assert card_order(membership.customer) == []

    stripe_emulator.faults.clear()  # Stripe is back
    add_card(signed_in_client, stripe_emulator)
    assert len(stripe_client.v1.customers.list().data) == 1


def test_cards_page_asks_stripe_nothing_and_its_queries_do_not_grow(
    signed_in_client, membership, stripe_emulator, stripe_client
):
    stripe_customer = billing_info_ensure(
        customer=membership.customer, email="owner@example.com"
    ).stripe_id

    tokens = iter(f"pm_card_{name}" for name in DISTINCT_CARDS)

    def attach_cards(count):
        for _ in range(count):
            pm = stripe_client.v1.payment_methods.attach(
                next(tokens), {"customer": stripe_customer}
            )
            payment_method_sync(stripe_id=pm.id)

    def render(url):
        stripe_emulator.http.requests.clear()
        with CaptureQueriesContext(connection) as queries:
            response = signed_in_client.get(url)
        assert response.status_code == 200
        assert stripe_emulator.http.requests == []
        return len(queries)

    attach_cards(1)
    one = {url: render(url) for url in (CARDS_URL, reverse("billing:overview"))}
    attach_cards(9)
    ten = {url: render(url) for url in (CARDS_URL, reverse("billing:overview"))}

    assert PaymentMethod.objects.for_customer(membership.customer).count() == 10
    assert one == ten


def test_support_sees_the_cards_and_timeline_in_the_admin(
    signed_in_client, membership, stripe_emulator, admin_client
):
    pm = add_card(signed_in_client, stripe_emulator)
    stripe_customer = membership.customer.billing.billing_info.stripe_id

    found = admin_client.get(reverse("admin:accounts_customer_changelist"), {"q": stripe_customer})
    assert membership.customer.customer_id in found.content.decode()
    response = admin_client.get(
        reverse("admin:accounts_customer_change", args=[quote(membership.customer.customer_id)])
    )
    # Seen once empty under load: say what came back instead of an empty page.
    assert response.status_code == 200, (response.status_code, response.get("Location"))
    page = response.content.decode()
    assert "Card added" in page
    assert stripe_customer in page
    billing_info = admin_client.get(
        reverse(
            "admin:billing_billinginfo_change", args=[membership.customer.billing.billing_info.pk]
        )
    ).content.decode()
    assert pm in billing_info


def test_the_last_card_stays_while_a_paid_plan_is_active(
    signed_in_client, membership, stripe_emulator, stripe_client
):
    catalog_push(catalog=catalog_read())
    pm = add_card(signed_in_client, stripe_emulator)
    stripe_customer = membership.customer.billing.billing_info.stripe_id
    # A plan still in its trial renews with this card too.
    subscription = stripe_client.v1.subscriptions.create(
        {
            "customer": stripe_customer,
            "items": [{"price": Plan.objects.get(code="pro").stripe_price_id}],
            "trial_period_days": 7,
            "metadata": {"customer_id": membership.customer.customer_id},
        }
    )
    assert subscription.status == "trialing"
    stripe_emulator.deliver()

    page = signed_in_client.get(CARDS_URL).content.decode()
    assert "while your paid plan is active" in page
    response = signed_in_client.post(
        reverse("billing:payment_method_remove", args=[pm]), follow=True
    )

    assert "This is your only card and your paid plan renews with it" in response.content.decode()
    assert card_order(membership.customer) == [pm]
    assert stripe_client.v1.payment_methods.retrieve(pm).customer == stripe_customer

    # With a second card, the first can go.
    second = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")
    signed_in_client.post(reverse("billing:payment_method_remove", args=[pm]), {"confirm": "yes"})
    assert card_order(membership.customer) == [second]


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "billing:payment_methods", []),
        ("post", "billing:payment_method_add", []),
        ("post", "billing:payment_method_remove", ["pm_x"]),
        ("get", "billing:details", []),
        ("get", "billing:plans", []),
        ("post", "billing:plan_cancel", []),
    ],
)
def test_plain_members_cannot_manage_billing(client, membership, stripe_emulator, method, name,
                                             args):  # fmt: skip
    from tests.accounts.factories import MembershipFactory

    member = MembershipFactory(customer=membership.customer, role="member")
    client.force_login(member.user)
    response = getattr(client, method)(reverse(name, args=args))
    assert response.status_code == 403
    assert "owner or billing contact" in response.content.decode()
    assert client.get(reverse("billing:overview")).status_code == 200


def test_make_primary_y_x_y_from_one_page_ends_with_y_at_stripe_and_here(
    signed_in_client, membership, stripe_emulator, stripe_client
):
    x = add_card(signed_in_client, stripe_emulator)
    y = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")
    attempt = signed_in_client.get(CARDS_URL).context["attempt"]  # one page, three clicks

    for card in (y, x, y):
        signed_in_client.post(
            reverse("billing:payment_method_make_primary", args=[card]), {"attempt": attempt}
        )
        assert card_order(membership.customer)[0] == card
        assert stripe_default(stripe_client, membership) == card
