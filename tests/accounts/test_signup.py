import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.models import Customer, Membership, User
from accounts.services import EmailAlreadyRegistered, customer_signup

SIGNUP_URL = reverse("signup")
GOOD_PASSWORD = "a-long-and-unusual-passphrase"
SIGNED_UP_AT = datetime(2027, 12, 31, 23, 30, tzinfo=UTC)


def new_customer() -> Customer:
    return Customer.objects.get(memberships__user__email="new@example.com")


def signup_post(client, address="127.0.0.1", **overrides):
    data = {"email": "new@example.com", "password": GOOD_PASSWORD, "company_name": "Initech"}
    data.update(overrides)
    return client.post(SIGNUP_URL, data, REMOTE_ADDR=address)


def test_signup_page_renders(client, other_membership):
    response = client.get(SIGNUP_URL)
    assert response.status_code == 200
    assert b'name="email"' in response.content
    assert b'name="company_name"' in response.content


@time_machine.travel(SIGNED_UP_AT, tick=False)
def test_signup_creates_owner_customer_with_trial_and_asks_to_confirm(
    client, other_membership, settings
):
    settings.TRIAL_DAYS = 14
    response = signup_post(client)

    assert response.status_code == 302
    assert response.url == reverse("signup_done")
    user = User.objects.get(email="new@example.com")
    assert not user.is_email_verified
    membership = Membership.objects.get(user=user)
    customer = membership.customer
    assert membership.role == Membership.Role.OWNER
    assert customer.name == "Initech"
    assert re.fullmatch(r"cust_[0-9a-f]{32}", customer.customer_id)
    # The trial starts at signup, not when the address is confirmed.
    assert customer.trial_ends_at == SIGNED_UP_AT + timedelta(days=14)
    assert customer.trial_days_left() == 14
    # The other customer is untouched and the new user belongs to one account only.
    assert Customer.objects.count() == 2
    assert list(Customer.objects.for_user(user)) == [customer]
    # Not signed in by signup (a registered address is not), but the password works.
    assert "_auth_user_id" not in client.session
    done = client.get(response.url)
    assert "Check your inbox" in done.content.decode()
    client.post(reverse("login"), {"username": "new@example.com", "password": GOOD_PASSWORD})
    home = client.get(reverse("home"))
    assert customer.customer_id in home.content.decode()
    assert "14 days left" in home.content.decode()
    assert "Confirm your email address" in home.content.decode()
    assert other_membership.customer.customer_id not in home.content.decode()


def test_signup_honours_trial_days_setting(client, other_membership, settings):
    settings.TRIAL_DAYS = 30
    signup_post(client)
    assert new_customer().trial_days_left() == 30


def test_company_name_is_optional(client, other_membership):
    response = signup_post(client, company_name="")
    assert response.status_code == 302
    assert new_customer().name == ""


def test_signup_queues_the_welcome_email_with_the_confirmation_link_after_commit(
    client, other_membership, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        signup_post(client)
    # The welcome email, and the trial's license.
    assert sorted(m.subject for m in mail.outbox) == [
        "Welcome to Billing Portal: confirm your email address",
        "Your Billing Portal license (Trial)",
    ]
    email = next(m for m in mail.outbox if m.subject.startswith("Welcome"))
    assert email.to == ["new@example.com"]
    assert new_customer().customer_id in email.body
    assert re.search(r"https?://\S+/accounts/verify/\S+/", email.body)


def test_signup_sends_nothing_until_the_transaction_commits(client, other_membership):
    # The test's transaction never commits: the callbacks stay queued.
    signup_post(client)
    assert not mail.outbox


@pytest.mark.parametrize("email", ["owner@example.com", "OWNER@Example.COM", " Owner@example.com "])
def test_signup_with_a_registered_email_answers_the_same_and_tells_the_owner(
    client, membership, other_membership, email, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = signup_post(client, email=email)

    assert response.status_code == 302
    assert response.url == reverse("signup_done")
    assert "_auth_user_id" not in client.session
    assert User.objects.count() == 2
    assert Customer.objects.count() == 2
    assert Membership.objects.count() == 2
    # Only the owner hears of it, by email: no welcome, no license, no new password.
    [owner_email] = mail.outbox
    assert owner_email.to == ["owner@example.com"]
    assert owner_email.subject == "Someone tried to sign up with your address"
    assert "/accounts/password_reset/" in owner_email.body
    membership.user.refresh_from_db()
    assert not membership.user.check_password(GOOD_PASSWORD)


def test_signup_pages_are_the_same_for_a_new_and_a_registered_email(membership, other_membership):
    from django.test import Client

    def journey(email):
        client = Client()
        posted = signup_post(client, email=email)
        page = client.get(posted.url)
        return posted.status_code, posted.url, page.status_code, page.content, client.session

    new = journey("new@example.com")
    registered = journey("owner@example.com")

    assert new[:4] == registered[:4]
    assert "_auth_user_id" not in new[4]
    assert "_auth_user_id" not in registered[4]
    assert User.objects.filter(email="new@example.com").exists()


def test_repeated_signups_with_a_registered_email_email_the_owner_a_few_times_only(
    client, membership, other_membership, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        responses = [signup_post(client, email="owner@example.com") for _ in range(10)]

    assert {(r.status_code, r.url) for r in responses} == {(302, reverse("signup_done"))}
    assert len(mail.outbox) == 3
    assert {m.to[0] for m in mail.outbox} == {"owner@example.com"}


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("73519826430", "This password is entirely numeric."),
        ("new@example.com", "The password is too similar to the email address."),
    ],
)
def test_weak_password_shows_djangos_validator_messages(
    client, other_membership, password, message
):
    response = signup_post(client, password=password)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": ""}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"password": ""}, "password"),
        ({"company_name": "x" * 201}, "company_name"),
    ],
)
def test_invalid_signup_input_is_a_form_error(client, other_membership, data, field):
    response = signup_post(client, **data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not User.objects.filter(email="new@example.com").exists()
    assert Customer.objects.count() == 1


def test_signup_without_csrf_token_is_forbidden(db, other_membership):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = signup_post(client)
    assert response.status_code == 403
    assert b"This form has expired" in response.content
    assert not User.objects.filter(email="new@example.com").exists()


def test_signed_in_user_is_sent_home_from_signup(signed_in_client):
    response = signed_in_client.get(SIGNUP_URL)
    assert response.status_code == 302
    assert response.url == reverse("home")


def test_database_refuses_the_same_email_in_another_case(membership):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(email="Owner@Example.com", password=GOOD_PASSWORD)


def test_signup_that_loses_a_race_for_the_email_writes_nothing(
    membership, other_membership, monkeypatch
):
    # Another request created the same address between our check and our insert.
    monkeypatch.setattr(type(User.objects), "email_taken", lambda self, email: False)

    with pytest.raises(EmailAlreadyRegistered):
        customer_signup(email="OWNER@example.com", password=GOOD_PASSWORD)

    assert User.objects.count() == 2
    assert Customer.objects.count() == 2
    assert Membership.objects.count() == 2


def test_signups_from_one_client_address_are_throttled_alike_for_any_email(
    membership, other_membership
):
    from django.test import Client

    from accounts.services import SIGNUPS_PER_CLIENT

    client = Client()
    for n in range(SIGNUPS_PER_CLIENT):
        email = "owner@example.com" if n % 2 else f"new{n}@example.com"
        assert signup_post(client, email=email, address="203.0.113.9").status_code == 302
    users = User.objects.count()

    refused = [
        signup_post(client, email=email, address="203.0.113.9")
        for email in ("brand-new@example.com", "owner@example.com")
    ]

    assert [r.status_code for r in refused] == [429, 429]
    assert refused[0].content == refused[1].content
    assert "Too many signups from your network" in refused[0].content.decode()
    assert User.objects.count() == users
    # Another address signs up as usual.
    assert signup_post(Client(), email="elsewhere@example.com").status_code == 302
