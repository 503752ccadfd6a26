import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

LOGIN_URL = reverse("login")


@pytest.mark.parametrize("email", ["owner@example.com", "OWNER@EXAMPLE.COM"])
def test_login_by_email_in_any_case(client, membership, other_membership, password, email):
    response = client.post(LOGIN_URL, {"username": email, "password": password})
    assert response.status_code == 302
    assert response.url == reverse("home")
    home = client.get(reverse("home")).content.decode()
    assert membership.customer.customer_id in home
    assert other_membership.customer.customer_id not in home


def test_wrong_password_is_a_form_error(client, membership):
    response = client.post(LOGIN_URL, {"username": "owner@example.com", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct email address and password" in response.content.decode()


def test_login_without_csrf_token_is_forbidden(membership, password):
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN_URL, {"username": "owner@example.com", "password": password})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post(signed_in_client):
    response = signed_in_client.post(reverse("logout"))
    assert response.status_code == 302
    assert signed_in_client.get(reverse("home")).status_code == 302


def test_home_requires_sign_in(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(LOGIN_URL)


def test_repeated_failures_lock_the_login(client, membership, password, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post(LOGIN_URL, {"username": "owner@example.com", "password": "wrong"})

    response = client.post(LOGIN_URL, {"username": "owner@example.com", "password": password})

    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_reset_by_email_link(
    client, membership, other_membership, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("password_reset"), {"email": "OWNER@example.com"})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@example.com"]
    assert mail.outbox[0].subject == "Reset your Billing Portal password"
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)

    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    new_password = "another-fine-passphrase-42"
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
    )
    assert done.status_code == 302

    membership.user.refresh_from_db()
    assert membership.user.check_password(new_password)
    other_membership.user.refresh_from_db()
    assert not other_membership.user.check_password(new_password)
    # The link worked once.
    assert "This link has expired" in client.get(link, follow=True).content.decode()


def test_password_reset_for_unknown_email_sends_nothing(
    client, membership, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert not mail.outbox


def test_password_reset_with_a_malformed_email_is_a_form_error(client, db):
    response = client.post(reverse("password_reset"), {"email": "not-an-email"})
    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert not mail.outbox


def test_lockout_counts_the_email_in_any_case(client, membership, password, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    client.post(LOGIN_URL, {"username": "owner@example.com", "password": "wrong"})
    client.post(LOGIN_URL, {"username": "OWNER@example.com", "password": "wrong"})

    response = client.post(LOGIN_URL, {"username": "Owner@Example.com", "password": password})

    assert response.status_code == 429


def test_lockout_of_one_email_leaves_others_alone(
    client, membership, other_membership, password, settings
):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        client.post(LOGIN_URL, {"username": "owner@example.com", "password": "wrong"})

    response = client.post(
        LOGIN_URL, {"username": "someone-else@example.com", "password": password}
    )

    assert response.status_code == 302
