"""Password resets are throttled per email and per client address, and the page after the
request is the same whether an email went out, the address is unknown or it was throttled."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.services import PASSWORD_RESETS_PER_CLIENT, PASSWORD_RESETS_PER_EMAIL
from tests.accounts.factories import UserFactory

RESET_URL = reverse("password_reset")
DONE_URL = reverse("password_reset_done")


@pytest.fixture
def reset(django_capture_on_commit_callbacks):
    """Ask for a reset as a browser would; the email (if any) is sent as after a commit."""

    def post(client, email, address="203.0.113.7"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(RESET_URL, {"email": email}, REMOTE_ADDR=address)
        return response.status_code, response.url

    return post


def test_thirty_requests_for_one_email_send_at_most_the_allowed_emails(
    client, membership, other_membership, reset
):
    answers = {reset(client, "owner@example.com") for _ in range(30)}

    assert answers == {(302, DONE_URL)}
    assert len(mail.outbox) == PASSWORD_RESETS_PER_EMAIL == 3
    assert {m.to[0] for m in mail.outbox} == {"owner@example.com"}


def test_the_email_limit_holds_across_addresses_and_letter_cases(
    membership, other_membership, reset
):
    for n in range(30):
        email = "owner@example.com" if n % 2 else "OWNER@Example.com"
        reset(Client(), email, address=f"198.51.100.{n}")

    assert len(mail.outbox) == 3


def test_one_address_asking_for_many_emails_is_throttled(db, reset):
    users = [UserFactory(email=f"user{n}@example.com") for n in range(30)]
    client = Client()

    answers = {reset(client, user.email) for user in users}

    assert answers == {(302, DONE_URL)}
    assert len(mail.outbox) == PASSWORD_RESETS_PER_CLIENT == 10
    # Another address is not held back by that one.
    reset(Client(), "user29@example.com", address="192.0.2.1")
    assert mail.outbox[-1].to == ["user29@example.com"]
    assert len(mail.outbox) == 11


def test_unknown_emails_count_toward_the_address_limit(membership, reset):
    client = Client()
    for n in range(10):
        reset(client, f"nobody{n}@example.com")
    assert not mail.outbox

    assert reset(client, "owner@example.com") == (302, DONE_URL)
    assert not mail.outbox


def test_a_throttled_request_looks_like_any_other(
    membership, other_membership, reset, django_capture_on_commit_callbacks
):
    client = Client()
    for _ in range(3):
        reset(client, "owner@example.com")
    sent = len(mail.outbox)

    with django_capture_on_commit_callbacks(execute=True):
        throttled = client.post(RESET_URL, {"email": "owner@example.com"}, follow=True)
        unknown = client.post(RESET_URL, {"email": "nobody@example.com"}, follow=True)

    assert len(mail.outbox) == sent
    assert throttled.redirect_chain == unknown.redirect_chain == [(DONE_URL, 302)]
    assert throttled.content == unknown.content
    assert "If an account uses that address" in throttled.content.decode()


def test_the_limits_reset_after_an_hour(membership, other_membership, reset):
    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    client = Client()
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            reset(client, "owner@example.com")
    assert len(mail.outbox) == 3

    with time_machine.travel(start + timedelta(hours=1), tick=False):
        reset(client, "owner@example.com")
    assert len(mail.outbox) == 4
