"""Login throttling: per (email, address) as before, and per address across emails, so one
client cannot try a common password against many accounts (password spraying)."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.accounts.factories import UserFactory

LOGIN_URL = reverse("login")
ATTACKER = "203.0.113.7"
NEIGHBOUR = "198.51.100.20"


@pytest.fixture
def axes(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 6


def login(client, email, password, address):
    return client.post(LOGIN_URL, {"username": email, "password": password}, REMOTE_ADDR=address)


def test_one_wrong_password_for_many_emails_locks_the_address(
    axes, membership, other_membership, password
):
    victims = [UserFactory(email=f"victim{n}@example.com") for n in range(6)]
    client = Client()

    # One guess per account stays under the per-email limit of 3 every time.
    answers = [login(client, v.email, "Summer2026!", ATTACKER).status_code for v in victims]

    assert answers == [200, 200, 200, 200, 200, 429]
    # Now even the right password for another account is refused from that address...
    locked = login(client, "owner@example.com", password, ATTACKER)
    assert locked.status_code == 429
    assert "Too many sign-in attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # ...and only from that address.
    elsewhere = Client()
    assert login(elsewhere, "owner@example.com", password, NEIGHBOUR).status_code == 302


def test_failures_under_the_address_limit_leave_it_open(axes, membership, password):
    client = Client()
    for n in range(5):
        assert login(client, f"nobody{n}@example.com", "guess", ATTACKER).status_code == 200

    assert login(client, "owner@example.com", password, ATTACKER).status_code == 302


def test_the_address_lock_ends_after_the_cool_off(axes, membership, password):
    start = timezone.now()
    client = Client()
    with time_machine.travel(start, tick=False):
        for n in range(6):
            login(client, f"nobody{n}@example.com", "guess", ATTACKER)
        assert login(client, "owner@example.com", password, ATTACKER).status_code == 429

    with time_machine.travel(start + timedelta(hours=1, minutes=1), tick=False):
        assert login(client, "owner@example.com", password, ATTACKER).status_code == 302


def test_a_successful_login_does_not_clear_the_address_count(axes, membership, password):
    # A sprayer with one account of their own cannot reset the count by signing in to it.
    client = Client()
    for n in range(5):
        login(client, f"nobody{n}@example.com", "guess", ATTACKER)
    assert login(client, "owner@example.com", password, ATTACKER).status_code == 302
    client.post(reverse("logout"))

    assert login(client, "nobody9@example.com", "guess", ATTACKER).status_code == 429


def test_the_per_email_lock_still_comes_first(axes, membership, other_membership, password):
    client = Client()
    for _ in range(3):
        login(client, "owner@example.com", "wrong", ATTACKER)

    assert login(client, "owner@example.com", password, ATTACKER).status_code == 429
    # Three failures are under the address limit: other emails from there still sign in.
    assert login(client, "someone-else@example.com", password, ATTACKER).status_code == 302
