"""Signed licenses: Ed25519 JWTs (EdDSA) that a customer's copy of the product verifies
offline against the public keys at /.well-known/jwks.json.

The signing key comes from LICENSE_SIGNING_KEY (PEM text or a file path) or else from a key
generated once and kept in the database, sealed with a key derived from DJANGO_SECRET_KEY, so
every instance on the database signs with the same key whatever its disk holds. Each process
checks which key is current every SIGNING_KEY_RECHECK_SECONDS. `license_key_rotate` makes a
new key current; the old one stays published while licenses it signed are live.
"""

import base64
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Customer
from audit.ledger import Source, entry_record
from outgoing.models import EventType
from outgoing.services import outgoing_webhook_emit

from .entitlements import TRIAL_PLAN_CODE, customer_standing
from .models import License, PlanFeature, SigningKey
from .verify import AUDIENCE

ALGORITHM = "EdDSA"
# A paid license outlives its period a little, so a late renewal webhook costs no access.
PAID_GRACE = timedelta(days=3)
# Without a plan, the license states that for this long after it began.
NO_PLAN_VALIDITY = timedelta(days=30)
# How stale a process's idea of the current signing key may be after another instance rotates.
SIGNING_KEY_RECHECK_SECONDS = 60

logger = logging.getLogger(__name__)


def _public_pem(private_key: Ed25519PrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_id(private_key: Ed25519PrivateKey) -> str:
    """The key's RFC 7638 thumbprint: the same key always has the same kid."""
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private_key.public_key()))
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"))
    return jwt.utils.base64url_encode(hashlib.sha256(canonical.encode()).digest()).decode()


def _load_pem(text: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(text.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("LICENSE_SIGNING_KEY must be an Ed25519 private key")
    return key


def _sealing_key() -> bytes:
    """The key that seals generated signing keys in the database, derived from SECRET_KEY:
    every instance configured with the same DJANGO_SECRET_KEY can open them."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"billing-portal license signing key"
    ).derive(settings.SECRET_KEY.encode())


def _seal(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    nonce = os.urandom(12)
    sealed = AESGCM(_sealing_key()).encrypt(nonce, raw, key_id(private_key).encode())
    return "v1:" + base64.b64encode(nonce + sealed).decode()


def _unseal(key: SigningKey) -> Ed25519PrivateKey | None:
    """The private half of a generated key, or None when this process cannot open it (no
    sealed copy, or DJANGO_SECRET_KEY changed since it was sealed)."""
    if not key.private_key_sealed.startswith("v1:"):
        return None
    blob = base64.b64decode(key.private_key_sealed[3:])
    try:
        raw = AESGCM(_sealing_key()).decrypt(blob[:12], blob[12:], key.kid.encode())
    except InvalidTag:
        return None
    return Ed25519PrivateKey.from_private_bytes(raw)


def _legacy_file_key(kid: str) -> Ed25519PrivateKey | None:
    """Keys generated before they were sealed in the database lived in the data dir."""
    path = Path(settings.DATA_DIR) / "license-keys" / f"{kid}.pem"
    return _load_pem(path.read_text()) if path.exists() else None


def _generate_current() -> tuple[str, Ed25519PrivateKey]:
    """A new key, made current unless another process made one current first: then that
    one is used. The unique constraint on the current key decides the race."""
    private_key = Ed25519PrivateKey.generate()
    kid = key_id(private_key)
    try:
        with transaction.atomic():
            SigningKey.objects.create(
                kid=kid,
                public_key=_public_pem(private_key),
                private_key_sealed=_seal(private_key),
                is_current=True,
            )
    except IntegrityError:
        current = SigningKey.objects.get(is_current=True)
        theirs = _unseal(current)
        if theirs is None:
            raise ImproperlyConfigured(
                f"License signing key {current.kid} cannot be opened with this "
                "DJANGO_SECRET_KEY: give every instance the same DJANGO_SECRET_KEY."
            ) from None
        return current.kid, theirs
    logger.info("License signing key %s generated and made current", kid)
    return kid, private_key


def _current_key() -> tuple[str, Ed25519PrivateKey]:
    configured = settings.LICENSE_SIGNING_KEY
    if configured:
        text = configured if "BEGIN" in configured else Path(configured).read_text()
        private_key = _load_pem(text)
        return _make_current(private_key), private_key
    current = SigningKey.objects.filter(is_current=True).first()
    if current is not None:
        private_key = _unseal(current) or _legacy_file_key(current.kid)
        if private_key is not None:
            if not current.private_key_sealed:
                current.private_key_sealed = _seal(private_key)
                current.save(update_fields=["private_key_sealed"])
            return current.kid, private_key
        logger.warning(
            "License signing key %s cannot be opened here (DJANGO_SECRET_KEY changed?): "
            "a new key replaces it; licenses it signed still verify",
            current.kid,
        )
        return _rotate_to(Ed25519PrivateKey.generate())
    return _generate_current()


class _SigningKeyCache:
    """The current signing key, read once and checked again every
    SIGNING_KEY_RECHECK_SECONDS: a key rotated by another instance is picked up within
    that time. Inside an open transaction nothing is cached, since the key it may have
    generated is not there for anyone else until it commits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: tuple[str, Ed25519PrivateKey, float] | None = None

    def __call__(self) -> tuple[str, Ed25519PrivateKey]:
        entry = self._entry
        now = time.monotonic()
        if entry is not None and now - entry[2] < SIGNING_KEY_RECHECK_SECONDS:
            return entry[0], entry[1]
        with self._lock:
            if entry is not None:
                current = SigningKey.objects.filter(is_current=True).values_list("kid", flat=True)
                if list(current) == [entry[0]]:
                    self._entry = (entry[0], entry[1], now)
                    return entry[0], entry[1]
            kid, private_key = _current_key()
            if not connection.in_atomic_block:
                self._entry = (kid, private_key, now)
            return kid, private_key

    def cache_clear(self) -> None:
        self._entry = None


signing_key = _SigningKeyCache()
signing_key.__doc__ = "(kid, private key) that signs new licenses."


@transaction.atomic
def _make_current(private_key: Ed25519PrivateKey) -> str:
    kid = key_id(private_key)
    SigningKey.objects.exclude(kid=kid).filter(is_current=True).update(is_current=False)
    SigningKey.objects.update_or_create(
        kid=kid, defaults={"public_key": _public_pem(private_key), "is_current": True}
    )
    return kid


def _rotate_to(private_key: Ed25519PrivateKey) -> tuple[str, Ed25519PrivateKey]:
    kid = key_id(private_key)
    with transaction.atomic():
        SigningKey.objects.filter(is_current=True).update(is_current=False)
        SigningKey.objects.create(
            kid=kid,
            public_key=_public_pem(private_key),
            private_key_sealed=_seal(private_key),
            is_current=True,
        )
    return kid, private_key


def license_key_rotate() -> str:
    """Generate a key, sealed in the database, and sign with it from now on (other
    instances within SIGNING_KEY_RECHECK_SECONDS); returns its kid."""
    if settings.LICENSE_SIGNING_KEY:
        raise ValueError(
            "LICENSE_SIGNING_KEY is set: rotate by setting a new key there and restarting."
        )
    kid, _ = _rotate_to(Ed25519PrivateKey.generate())
    signing_key.cache_clear()
    return kid


def jwks() -> dict:
    """Every key that may still verify a live license, and the current one."""
    live_kids = License.objects.filter(
        expires_at__gt=timezone.now(), revoked_at__isnull=True
    ).values("kid")
    keys = SigningKey.objects.filter(is_current=True) | SigningKey.objects.filter(kid__in=live_kids)
    published = []
    for key in keys.distinct():
        public = serialization.load_pem_public_key(key.public_key.encode())
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
        published.append({**jwk, "kid": key.kid, "alg": ALGORITHM, "use": "sig"})
    return {"keys": published}


@dataclass(frozen=True)
class Entitlements:
    """What a license states; two are equal when nothing in the license would change."""

    plan: str | None
    status: str
    features: dict
    expires_at: datetime
    grace_ends_at: datetime | None = None


def entitlements_for(customer: Customer) -> Entitlements:
    standing = customer_standing(customer)
    features = {}
    if standing.plan_code and standing.denial is None:
        for limits in PlanFeature.objects.select_related("feature").filter(
            plan__code=standing.plan_code
        ):
            features[limits.feature.key] = (
                True
                if limits.feature.kind == limits.feature.Kind.BOOLEAN
                else {"limit": limits.limit, "reset": limits.reset, "soft_limit": limits.soft_limit}
            )
    try:
        paid = customer.plan
    except Customer.plan.RelatedObjectDoesNotExist:
        paid = None
    if standing.plan_code == TRIAL_PLAN_CODE and standing.denial is None:
        expires_at = customer.trial_ends_at
    elif paid is not None and standing.denial is None and paid.current_period_end:
        expires_at = paid.current_period_end + PAID_GRACE
    else:
        began = (paid.current_period_end if paid else None) or customer.trial_ends_at
        expires_at = began + NO_PLAN_VALIDITY
    grace_ends_at = standing.grace_ends_at and standing.grace_ends_at.replace(microsecond=0)
    if grace_ends_at is not None:
        # Past due: the features this license states end with the grace, not the period.
        expires_at = min(expires_at, grace_ends_at)
    return Entitlements(
        plan=standing.plan_code if standing.denial is None else None,
        status=standing.status,
        features=features,
        expires_at=expires_at.replace(microsecond=0),
        grace_ends_at=grace_ends_at,
    )


def license_refresh(*, customer: Customer, force: bool = False) -> License | None:
    """Issue a new license when, and only when, what it states has changed (or when
    `force`d: support reissuing one); the previous one is revoked and the new one emailed.
    Returns the new license, if one was issued."""
    from . import tasks

    signing_key()  # outside the transaction: a key generated now is committed for everyone
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        customer.refresh_from_db(fields=["trial_ends_at", "suspended_at"])
        wanted = entitlements_for(customer)
        # At most one license of a customer is unrevoked: the current one.
        current = License.objects.filter(customer=customer, revoked_at__isnull=True).first()
        if current and _states(current) == wanted and not force:
            return None
        issued = _license_sign(customer, wanted)
        if current:
            current.revoked_at = issued.issued_at
            current.save(update_fields=["revoked_at"])
        entry_record(
            customer_id=customer.customer_id,
            kind="license_issued",
            source=Source.SYSTEM,
            sentence=f"License issued: {wanted.plan or 'no plan'}, {wanted.status}, "
            f"valid until {wanted.expires_at:%-d %B %Y}.",
            data={"jti": str(issued.jti), "replaces": str(current.jti) if current else None},
        )
        transaction.on_commit(partial(tasks.license_email_send.delay, jti=str(issued.jti)))
        _license_events_emit(customer, issued, wanted, current)
    return issued


def _license_events_emit(customer, issued: License, wanted: Entitlements, previous) -> None:
    """license.issued for every license; customer.entitlements_changed when the plan,
    status, features or grace changed (not when only the expiry moved on, at a renewal)."""
    stated = {
        "plan": wanted.plan,
        "status": wanted.status,
        "features": wanted.features,
        "grace_ends_at": wanted.grace_ends_at and wanted.grace_ends_at.isoformat(),
    }
    outgoing_webhook_emit(
        customer=customer,
        type=EventType.LICENSE_ISSUED,
        data={
            "jti": str(issued.jti),
            "replaces": str(previous.jti) if previous else None,
            "expires_at": wanted.expires_at.isoformat(),
            **stated,
        },
    )
    before = previous and {
        "plan": previous.plan_code or None,
        "status": previous.status,
        "features": previous.features,
        "grace_ends_at": previous.grace_ends_at and previous.grace_ends_at.isoformat(),
    }
    if before != stated:
        outgoing_webhook_emit(
            customer=customer,
            type=EventType.ENTITLEMENTS_CHANGED,
            data={"entitlements": stated, "previous": before or None},
        )


def _states(license: License) -> Entitlements:
    return Entitlements(
        plan=license.plan_code or None,
        status=license.status,
        features=license.features,
        expires_at=license.expires_at,
        grace_ends_at=license.grace_ends_at,
    )


def _license_sign(customer: Customer, wanted: Entitlements) -> License:
    kid, private_key = signing_key()
    now = timezone.now()
    jti = uuid.uuid4()
    claims = {
        "iss": settings.PORTAL_BASE_URL,
        "sub": customer.customer_id,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(wanted.expires_at.timestamp()),
        "jti": str(jti),
        "plan": wanted.plan,
        "status": wanted.status,
        "features": wanted.features,
    }
    if wanted.grace_ends_at is not None:
        claims["grace_ends_at"] = int(wanted.grace_ends_at.timestamp())
    token = jwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid})
    return License.objects.create(
        jti=jti,
        customer=customer,
        plan_code=wanted.plan or "",
        status=wanted.status,
        features=wanted.features,
        kid_id=kid,
        issued_at=now,
        expires_at=wanted.expires_at,
        grace_ends_at=wanted.grace_ends_at,
        token=token,
    )


def licenses_refresh_all() -> int:
    """Reissue every license whose statement changed (after the catalog's limits did);
    returns how many were issued."""
    return sum(
        license_refresh(customer=customer) is not None
        for customer in Customer.objects.only("pk", "trial_ends_at").iterator()
    )
