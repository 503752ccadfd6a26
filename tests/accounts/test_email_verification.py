"""Confirming an email address by the emailed link: signed, expiring, single-use, and a
clear page (never a 500) for a link that is tampered with, expired or used."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import VERIFICATION_RESENDS_PER_USER
from accounts.tokens import email_verification_token
from tests.accounts.factories import MembershipFactory

GOOD_PASSWORD = "a-long-and-unusual-passphrase"


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """Run a request and send what it queued on commit."""

    def run(request, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return request(*args, **kwargs)

    return run


def link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/verify/\S+/)", message.body).group(1)


@pytest.fixture
def signed_up(client, other_membership, send):
    """A new signup, and the path of the link its welcome email holds."""
    send(
        client.post,
        reverse("signup"),
        {"email": "new@example.com", "password": GOOD_PASSWORD},
    )
    [welcome] = [m for m in mail.outbox if m.subject.startswith("Welcome")]
    return User.objects.get(email="new@example.com"), link_in(welcome)


def test_the_link_confirms_the_address_and_signs_in(signed_up, other_membership):
    user, link = signed_up
    browser = Client()

    page = browser.get(link)
    assert page.status_code == 200
    assert "Confirm that <strong>new@example.com</strong> is your address" in page.content.decode()
    # Opening the link (as a mail scanner does) changes nothing; the button does.
    user.refresh_from_db()
    assert not user.is_email_verified

    confirmed = browser.post(link, follow=True)

    assert confirmed.redirect_chain == [(reverse("home"), 302)]
    assert "new@example.com is confirmed" in confirmed.content.decode()
    assert "email-unverified" not in confirmed.content.decode()
    user.refresh_from_db()
    assert user.is_email_verified
    assert int(browser.session["_auth_user_id"]) == user.pk
    other_membership.user.refresh_from_db()
    assert other_membership.user.email_verified_at is not None  # the factory's, untouched


def test_the_link_works_once(signed_up):
    user, link = signed_up
    Client().post(link)
    user.refresh_from_db()
    first_confirmation = user.email_verified_at

    again = Client()
    for response in (again.get(link), again.post(link)):
        assert response.status_code == 400
        assert "This link was used already" in response.content.decode()
    assert "_auth_user_id" not in again.session
    user.refresh_from_db()
    assert user.email_verified_at == first_confirmation


def test_an_expired_link_gives_a_clear_page(other_membership, send):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        send(
            Client().post,
            reverse("signup"),
            {"email": "new@example.com", "password": GOOD_PASSWORD},
        )
        link = link_in(next(m for m in mail.outbox if m.subject.startswith("Welcome")))

    with time_machine.travel(start + timedelta(days=2, hours=23), tick=False):
        assert Client().get(link).status_code == 200

    with time_machine.travel(start + timedelta(days=3, minutes=1), tick=False):
        browser = Client()
        for response in (browser.get(link), browser.post(link)):
            assert response.status_code == 400
            assert "This link has expired" in response.content.decode()
    assert not User.objects.get(email="new@example.com").is_email_verified


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature
        lambda token: "x" + token,  # the payload
        lambda token: token.split(":")[0],  # cut short
        lambda token: "not-a-token",
    ],
)
def test_a_tampered_link_gives_a_clear_page(signed_up, tamper):
    user, link = signed_up
    token = link.rstrip("/").rsplit("/", 1)[1]
    bad = reverse("email_verify", kwargs={"token": tamper(token)})

    browser = Client()
    for response in (browser.get(bad), browser.post(bad)):
        assert response.status_code == 400
        assert "This link does not work" in response.content.decode()
    user.refresh_from_db()
    assert not user.is_email_verified
    assert "_auth_user_id" not in browser.session


def test_a_link_for_an_address_the_user_no_longer_has_does_not_work(signed_up):
    user, link = signed_up
    user.email = "changed@example.com"
    user.save()

    response = Client().post(link)

    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()
    user.refresh_from_db()
    assert not user.is_email_verified


def test_a_token_from_another_purpose_is_refused(signed_up):
    from django.core import signing

    user, _ = signed_up
    other_purpose = signing.dumps({"user": user.pk, "email": user.email}, salt="something-else")
    response = Client().post(reverse("email_verify", kwargs={"token": other_purpose}))
    assert response.status_code == 400
    user.refresh_from_db()
    assert not user.is_email_verified


def test_a_link_for_one_user_never_confirms_another(db, other_membership):
    unverified = MembershipFactory(user__email_verified_at=None).user
    other = MembershipFactory(user__email_verified_at=None).user

    Client().post(reverse("email_verify", kwargs={"token": email_verification_token(user=other)}))

    unverified.refresh_from_db()
    other.refresh_from_db()
    assert other.is_email_verified
    assert not unverified.is_email_verified


def test_confirming_while_signed_in_as_someone_else_keeps_that_session(signed_up, membership):
    user, link = signed_up
    browser = Client()
    browser.force_login(membership.user)

    browser.post(link)

    user.refresh_from_db()
    assert user.is_email_verified
    assert int(browser.session["_auth_user_id"]) == membership.user.pk


def test_an_unverified_user_can_ask_for_a_new_link(signed_up, send):
    user, first_link = signed_up
    browser = Client()
    browser.login(username="new@example.com", password=GOOD_PASSWORD)
    home = browser.get(reverse("home")).content.decode()
    assert "Resend the confirmation email" in home
    mail.outbox.clear()

    response = send(browser.post, reverse("email_verification_resend"), follow=True)

    assert f"We sent a new link to {user.email}" in response.content.decode()
    [message] = mail.outbox
    assert message.to == ["new@example.com"]
    assert message.subject == "Confirm your email address for Billing Portal"
    browser.post(link_in(message))
    user.refresh_from_db()
    assert user.is_email_verified
    # Every link stops working once the address is confirmed.
    assert Client().post(first_link).status_code == 400


def test_new_links_are_throttled(signed_up, send):
    browser = Client()
    browser.login(username="new@example.com", password=GOOD_PASSWORD)
    mail.outbox.clear()

    for _ in range(VERIFICATION_RESENDS_PER_USER + 5):
        last = send(browser.post, reverse("email_verification_resend"), follow=True)

    assert len(mail.outbox) == VERIFICATION_RESENDS_PER_USER
    assert "please wait an hour" in last.content.decode()


def test_a_confirmed_user_gets_no_new_link(signed_in_client, send):
    response = send(signed_in_client.post, reverse("email_verification_resend"), follow=True)
    assert "confirmed already" in response.content.decode()
    assert not mail.outbox


def test_asking_for_a_new_link_needs_sign_in_and_a_post(client, db):
    response = client.post(reverse("email_verification_resend"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert client.get(reverse("email_verification_resend")).status_code == 405


def test_the_password_works_before_the_address_is_confirmed(signed_up):
    browser = Client()
    assert browser.login(username="new@example.com", password=GOOD_PASSWORD)
    home = browser.get(reverse("home")).content.decode()
    assert "Free trial" in home
    assert "Confirm your email address" in home


def test_setting_a_password_from_the_reset_link_confirms_the_address(signed_up, send):
    user, _ = signed_up
    browser = Client()
    send(browser.post, reverse("password_reset"), {"email": "new@example.com"})
    [reset_email] = [m for m in mail.outbox if "/accounts/reset/" in m.body]
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", reset_email.body).group(1)
    form_page = browser.get(link, follow=True)
    new_password = "yet-another-long-passphrase"

    browser.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
    )

    user.refresh_from_db()
    assert user.check_password(new_password)
    assert user.is_email_verified
