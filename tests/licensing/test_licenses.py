"""Licenses: issued at signup, reissued only when what they state changes, verifiable
offline against /.well-known/jwks.json, through key rotations."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.admin.utils import quote
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from licensing.licenses import license_key_rotate, license_refresh, signing_key
from licensing.models import CustomerPlan, License, Plan
from licensing.services import customer_plan_apply
from licensing.verify import LicenseInvalid, license_verify

ROOT = Path(__file__).resolve().parents[2]
GOOD_PASSWORD = "a-long-and-unusual-passphrase"


def published_jwks(client) -> dict:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return response.json()


def current(customer) -> License:
    return License.objects.get(customer=customer, revoked_at__isnull=True)


def test_signup_issues_the_trial_license(client, other_membership, catalog, settings):
    settings.PORTAL_BASE_URL = "https://billing.example.com"
    client.post(reverse("signup"), {"email": "new@example.com", "password": GOOD_PASSWORD})
    issued = License.objects.get(customer__memberships__user__email="new@example.com")

    claims = license_verify(issued.token, published_jwks(client), issuer=settings.PORTAL_BASE_URL)
    assert claims["sub"] == issued.customer_id
    assert claims["plan"] == "trial"
    assert claims["status"] == "trialing"
    assert claims["features"] == {
        "api_calls": {"limit": 1000, "reset": "monthly", "soft_limit": 800},
        "projects": {"limit": 3, "reset": "never", "soft_limit": None},
    }
    assert claims["exp"] == int(issued.customer.trial_ends_at.timestamp())
    assert jwt.get_unverified_header(issued.token)["kid"] == issued.kid_id
    assert not License.objects.filter(customer=other_membership.customer).exists()


def test_a_license_is_reissued_only_when_something_in_it_changes(membership, catalog):
    customer = membership.customer
    first = license_refresh(customer=customer)
    assert first is not None
    assert license_refresh(customer=customer) is None

    CustomerPlan.objects.create(
        customer=customer,
        plan=Plan.objects.get(code="pro"),
        status=CustomerPlan.Status.ACTIVE,
        current_period_start=timezone.now(),
        current_period_end=timezone.now() + timedelta(days=30),
        subscription_id="sub_1",
    )
    second = license_refresh(customer=customer)
    assert second.plan_code == "pro"
    assert "sso" in second.features
    first.refresh_from_db()
    assert first.revoked_at == second.issued_at
    assert license_refresh(customer=customer) is None
    assert License.objects.filter(customer=customer).count() == 2


def test_revoked_license_ids_are_published(client, membership, catalog):
    first = license_refresh(customer=membership.customer)
    membership.customer.trial_ends_at += timedelta(days=7)  # support extends the trial
    membership.customer.save()
    license_refresh(customer=membership.customer)

    revoked = client.get(reverse("api_revoked")).json()["revoked"]
    assert revoked == [str(first.jti)]


def test_key_rotation_keeps_live_licenses_verifiable(client, membership, other_membership,
                                                     catalog):  # fmt: skip
    old = license_refresh(customer=membership.customer)
    new_kid = license_key_rotate()
    new = license_refresh(customer=other_membership.customer)

    assert new.kid_id == new_kid != old.kid_id
    jwks = published_jwks(client)
    assert {key["kid"] for key in jwks["keys"]} == {old.kid_id, new_kid}
    assert license_verify(old.token, jwks)["sub"] == membership.customer.customer_id
    assert license_verify(new.token, jwks)["sub"] == other_membership.customer.customer_id


def test_a_configured_signing_key_is_used(membership, catalog, settings, tmp_path):
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    path = tmp_path / "signing.pem"
    path.write_text(pem)
    settings.LICENSE_SIGNING_KEY = str(path)
    signing_key.cache_clear()

    issued = license_refresh(customer=membership.customer)

    public = private_key.public_key()
    claims = jwt.decode(
        issued.token, public, algorithms=["EdDSA"], audience="billing-portal-license"
    )
    assert claims["sub"] == membership.customer.customer_id
    with pytest.raises(ValueError, match="LICENSE_SIGNING_KEY is set"):
        license_key_rotate()


def test_verification_names_the_reason(client, membership, other_membership, catalog):
    issued = license_refresh(customer=membership.customer)
    jwks = published_jwks(client)
    header, payload, signature = issued.token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    forged = jwt.utils.base64url_encode(json.dumps({**claims, "plan": "business"}).encode())

    with pytest.raises(LicenseInvalid, match="signature does not match"):
        license_verify(f"{header}.{forged.decode()}.{signature}", jwks)
    with pytest.raises(LicenseInvalid, match="unknown key"):
        license_verify(issued.token, {"keys": []})
    stranger = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                          headers={"kid": issued.kid_id})  # fmt: skip
    with pytest.raises(LicenseInvalid, match="signature does not match"):
        license_verify(stranger, jwks)
    expired = {**claims, "exp": int(timezone.now().timestamp()) - 10}
    with pytest.raises(LicenseInvalid, match="expired"):
        license_verify(jwt.encode(expired, signing_key()[1], algorithm="EdDSA",
                                  headers={"kid": issued.kid_id}), jwks)  # fmt: skip
    with pytest.raises(LicenseInvalid, match="not EdDSA"):
        license_verify(jwt.encode(claims, "s" * 40, algorithm="HS256"), jwks)


def test_the_command_line_verifier(client, membership, catalog, tmp_path):
    issued = license_refresh(customer=membership.customer)
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(published_jwks(client)))
    token_file = tmp_path / "license.jwt"
    token_file.write_text(issued.token)

    ok = subprocess.run(
        [sys.executable, "-m", "licensing.verify", str(token_file), "--jwks", str(jwks_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["sub"] == membership.customer.customer_id

    bad = subprocess.run(
        [sys.executable, "-m", "licensing.verify", issued.token[:-4] + "AAAA", "--jwks",
         str(jwks_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "License invalid: the signature does not match" in bad.stderr


def test_license_page_and_download_show_only_ones_own(
    signed_in_client, membership, other_membership, catalog
):
    mine = license_refresh(customer=membership.customer)
    theirs = license_refresh(customer=other_membership.customer)

    page = signed_in_client.get(reverse("license")).content.decode()
    assert str(mine.jti) in page and str(theirs.jti) not in page
    assert "1,000 a month" in page
    download = signed_in_client.get(reverse("license_download"))
    assert download.content.decode() == mine.token
    assert download["Content-Disposition"].startswith("attachment;")


def test_issuing_emails_the_license(membership, catalog, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        issued = license_refresh(customer=membership.customer)
    [email] = mail.outbox
    assert email.to == ["owner@example.com"]
    assert email.attachments[0][0] == "license.jwt"
    assert email.attachments[0][1] == issued.token


def test_a_changed_limit_in_the_catalog_reissues_affected_licenses(
    membership, other_membership, catalog
):
    from licensing.licenses import licenses_refresh_all
    from licensing.models import PlanFeature

    license_refresh(customer=membership.customer)
    license_refresh(customer=other_membership.customer)
    assert licenses_refresh_all() == 0

    PlanFeature.objects.filter(plan__code="trial", feature__key="api_calls").update(limit=2000)

    assert licenses_refresh_all() == 2
    assert current(membership.customer).features["api_calls"]["limit"] == 2000


def test_support_extending_the_trial_reissues_the_license(
    admin_client, membership, other_membership, catalog
):
    """Through the support page's action (the customer's admin page is read-only)."""
    license_refresh(customer=membership.customer)
    customer = membership.customer
    customer.trial_reminder_sent_at = timezone.now()
    customer.save()
    new_end = (customer.trial_ends_at + timedelta(days=7)).replace(
        hour=23, minute=59, second=59, microsecond=0
    )
    url = reverse("admin:accounts_customer_change", args=[quote(customer.customer_id)])
    assert admin_client.post(url, {"name": "x"}).status_code == 403
    action = reverse("support:action", args=[customer.customer_id, "trial_extend"])
    response = admin_client.post(
        action, {"trial_ends_on": new_end.strftime("%Y-%m-%d"), "reason": "asked for a week"}
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.trial_ends_at == new_end
    assert customer.trial_reminder_sent_at is None
    assert current(customer).expires_at == new_end
    assert License.objects.filter(customer=customer).count() == 2


def test_the_license_states_the_grace_and_is_reissued_once_per_change(membership, catalog):
    customer = membership.customer
    failed_at = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    period_start = failed_at - timedelta(days=1)

    def apply(status, at):
        with time_machine.travel(at, tick=False):
            customer_plan_apply(
                customer=customer, plan=Plan.objects.get(code="pro"), status=status,
                current_period_start=period_start,
                current_period_end=period_start + timedelta(days=30),
                cancel_at_period_end=False, subscription_id="sub_1",
            )  # fmt: skip

    apply(CustomerPlan.Status.ACTIVE, period_start)
    paid = current(customer)
    apply(CustomerPlan.Status.PAST_DUE, failed_at)
    in_grace = current(customer)
    apply(CustomerPlan.Status.PAST_DUE, failed_at + timedelta(days=2))  # a retry failed too
    assert current(customer) == in_grace
    claims = jwt.decode(in_grace.token, options={"verify_signature": False})
    grace_ends_at = int((failed_at + timedelta(days=7)).timestamp())
    assert in_grace != paid
    assert (claims["status"], claims["plan"]) == ("past_due", "pro")
    assert "sso" in claims["features"]
    assert claims["grace_ends_at"] == grace_ends_at
    assert claims["exp"] == grace_ends_at  # no later than the grace end

    apply(CustomerPlan.Status.ACTIVE, failed_at + timedelta(days=3))  # the payment went through
    paid_again = current(customer)
    assert paid_again != in_grace
    claims = jwt.decode(paid_again.token, options={"verify_signature": False})
    assert "grace_ends_at" not in claims
    assert claims["status"] == "active"
    assert claims["exp"] == int((period_start + timedelta(days=33)).timestamp())
    apply(CustomerPlan.Status.ACTIVE, failed_at + timedelta(days=4))
    assert License.objects.filter(customer=customer).count() == 3  # paid, in the grace, paid again
