"""The IDOR sweep's card half for a person in two accounts: through the emulator, each
account has its own card; working in one, the other's card ids are a 404 for every card
action, and nothing of it changes."""

import pytest
from django.urls import reverse

from accounts.models import Membership
from billing.models import PaymentMethod
from tests.accounts.factories import MembershipFactory
from tests.billing.test_cards import CARDS_URL, add_card, card_order

SWITCH = reverse("account_switch")
CARD_ACTIONS = [
    "billing:payment_method_move_up",
    "billing:payment_method_move_down",
    "billing:payment_method_make_primary",
    "billing:payment_method_remove",
]


@pytest.fixture
def two_accounts(signed_in_client, membership, other_membership, stripe_emulator):
    """Owner of A and of B, each with cards of its own; the other customer is present."""
    b = MembershipFactory(
        user=membership.user, customer__name="Acme Labs", role=Membership.Role.OWNER
    ).customer
    a_cards = [
        add_card(signed_in_client, stripe_emulator, token)
        for token in ("pm_card_visa", "pm_card_mastercard")
    ]
    signed_in_client.post(SWITCH, {"customer_id": b.customer_id})
    b_cards = [
        add_card(signed_in_client, stripe_emulator, token)
        for token in ("pm_card_amex", "pm_card_discover")
    ]
    return membership.customer, b, a_cards, b_cards


def test_working_in_one_account_the_others_cards_are_out_of_reach(
    signed_in_client, two_accounts, other_membership
):
    a, b, a_cards, b_cards = two_accounts
    for current, own, foreign in [(b, b_cards, a_cards), (a, a_cards, b_cards)]:
        signed_in_client.post(SWITCH, {"customer_id": current.customer_id})
        page = signed_in_client.get(CARDS_URL).content.decode()
        assert all(pm in page for pm in own) and not any(pm in page for pm in foreign)
        before = {customer.pk: card_order(customer) for customer in (a, b)}
        for action in CARD_ACTIONS:
            for pm in foreign:
                response = signed_in_client.post(
                    reverse(action, args=[pm]), {"confirm": "yes", "attempt": "x"}
                )
                assert response.status_code == 404, (action, pm)
        assert {customer.pk: card_order(customer) for customer in (a, b)} == before
    assert PaymentMethod.objects.for_customer(other_membership.customer).count() == 0
