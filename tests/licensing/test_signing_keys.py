"""Signing keys shared by every instance on the database: a generated key is sealed in the
database (not a local file), generated once however many processes start at once, picked
up by other instances after a rotation, and replaced, never lost, when it cannot be opened."""

import threading
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection

from licensing import licenses
from licensing.licenses import license_key_rotate, license_refresh, signing_key
from licensing.models import SigningKey
from licensing.verify import license_verify


def as_other_instance(settings, tmp_path, name: str) -> None:
    """What another web instance sees: the same database and secret, its own empty disk."""
    settings.DATA_DIR = tmp_path / name
    signing_key.cache_clear()


@pytest.mark.django_db
def test_a_generated_key_is_sealed_in_the_database_and_no_file_is_written(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "a"
    kid, _ = signing_key()

    stored = SigningKey.objects.get(kid=kid)
    assert stored.is_current
    assert stored.private_key_sealed.startswith("v1:")
    assert "PRIVATE KEY" not in stored.private_key_sealed
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").rglob("*.pem"))


@pytest.mark.django_db
def test_another_instance_with_its_own_disk_signs_with_the_same_key(
    membership, catalog, settings, tmp_path, client
):
    as_other_instance(settings, tmp_path, "a")
    first = license_refresh(customer=membership.customer)
    as_other_instance(settings, tmp_path, "b")

    assert signing_key()[0] == first.kid_id
    assert SigningKey.objects.count() == 1
    # A license signed here verifies with the JWKS either instance publishes.
    assert license_verify(first.token, client.get("/.well-known/jwks.json").json())


@pytest.mark.django_db
def test_a_rotation_elsewhere_is_picked_up_once_the_recheck_interval_has_passed(
    settings, tmp_path, monkeypatch
):
    old_kid, old_key = signing_key()
    as_other_instance(settings, tmp_path, "b")
    new_kid = license_key_rotate()  # on instance b; instance a's cache holds the old key
    checked = time.monotonic()
    monkeypatch.setattr(licenses.signing_key, "_entry", (old_kid, old_key, checked))

    # Within the interval: the cached key, which the JWKS still publishes.
    assert signing_key()[0] == old_kid
    stale = checked - licenses.SIGNING_KEY_RECHECK_SECONDS - 1
    monkeypatch.setattr(licenses.signing_key, "_entry", (old_kid, old_key, stale))
    assert signing_key()[0] == new_kid


@pytest.mark.django_db
def test_a_key_this_secret_cannot_open_is_replaced_and_its_licenses_still_verify(
    membership, other_membership, catalog, settings, client
):
    signed_before = license_refresh(customer=membership.customer)
    settings.SECRET_KEY = "another-secret-for-this-test-only"
    signing_key.cache_clear()

    kid, _ = signing_key()

    assert kid != signed_before.kid_id
    assert SigningKey.objects.get(is_current=True).kid == kid
    jwks = client.get("/.well-known/jwks.json").json()
    assert license_verify(signed_before.token, jwks)["sub"] == membership.customer.customer_id
    signed_after = license_refresh(customer=other_membership.customer)
    assert license_verify(signed_after.token, client.get("/.well-known/jwks.json").json())


@pytest.mark.django_db
def test_a_key_from_the_data_dir_of_an_older_release_is_sealed_and_kept(settings, tmp_path):
    private_key = Ed25519PrivateKey.generate()
    kid = licenses.key_id(private_key)
    SigningKey.objects.create(
        kid=kid, public_key=licenses._public_pem(private_key), is_current=True
    )
    settings.DATA_DIR = tmp_path
    (tmp_path / "license-keys").mkdir()
    (tmp_path / "license-keys" / f"{kid}.pem").write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    assert signing_key()[0] == kid
    assert SigningKey.objects.get(kid=kid).private_key_sealed.startswith("v1:")
    token = jwt.encode({"sub": "x"}, signing_key()[1], algorithm="EdDSA")
    assert jwt.decode(token, private_key.public_key(), algorithms=["EdDSA"])["sub"] == "x"


@pytest.mark.django_db(transaction=True)
def test_instances_starting_at_once_agree_on_one_key():
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (CI runs it there)")
    barrier = threading.Barrier(12)
    kids = []

    def start():
        try:
            barrier.wait()
            kids.append(licenses._current_key()[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(kids) == 12
    assert len(set(kids)) == 1
    assert list(SigningKey.objects.values_list("kid", flat=True)) == kids[:1]
