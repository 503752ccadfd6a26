"""Signed licenses: Ed25519 JWTs (EdDSA) that a customer's copy of the product verifies
offline against the public keys at /.well-known/jwks.json.

The signing key comes from LICENSE_SIGNING_KEY (PEM text or a file path) or else from a key
generated once into the data dir; it is loaded once per process. `license_key_rotate`
makes a new key current; the old one stays published while licenses it signed are live.
"""

import functools
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Customer
from audit.ledger import Source, entry_record

from .entitlements import TRIAL_PLAN_CODE, customer_standing
from .models import License, PlanFeature, SigningKey
from .verify import AUDIENCE

ALGORITHM = "EdDSA"
# A paid license outlives its period a little, so a late renewal webhook costs no access.
PAID_GRACE = timedelta(days=3)
# Without a plan, the license states that for this long after it began.
NO_PLAN_VALIDITY = timedelta(days=30)


def _key_dir() -> Path:
    path = Path(settings.DATA_DIR) / "license-keys"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


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


def _save_generated(private_key: Ed25519PrivateKey) -> str:
    kid = key_id(private_key)
    path = _key_dir() / f"{kid}.pem"
    path.touch(mode=0o600)
    path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return kid


@transaction.atomic
def _make_current(private_key: Ed25519PrivateKey) -> str:
    kid = key_id(private_key)
    SigningKey.objects.exclude(kid=kid).filter(is_current=True).update(is_current=False)
    SigningKey.objects.update_or_create(
        kid=kid, defaults={"public_key": _public_pem(private_key), "is_current": True}
    )
    return kid


@functools.cache
def signing_key() -> tuple[str, Ed25519PrivateKey]:
    """(kid, private key) that signs new licenses; read once per process."""
    configured = settings.LICENSE_SIGNING_KEY
    if configured:
        text = configured if "BEGIN" in configured else Path(configured).read_text()
        private_key = _load_pem(text)
        return _make_current(private_key), private_key
    current = SigningKey.objects.filter(is_current=True).first()
    if current and (path := _key_dir() / f"{current.kid}.pem").exists():
        return current.kid, _load_pem(path.read_text())
    private_key = Ed25519PrivateKey.generate()
    _save_generated(private_key)
    return _make_current(private_key), private_key


def license_key_rotate() -> str:
    """Generate a key into the data dir and sign with it from now on; returns its kid."""
    if settings.LICENSE_SIGNING_KEY:
        raise ValueError(
            "LICENSE_SIGNING_KEY is set: rotate by setting a new key there and restarting."
        )
    private_key = Ed25519PrivateKey.generate()
    _save_generated(private_key)
    kid = _make_current(private_key)
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


def license_refresh(*, customer: Customer) -> License | None:
    """Issue a new license when, and only when, what it states has changed; the previous
    one is revoked and the new one emailed. Returns the new license, if one was issued."""
    from . import tasks

    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        customer.refresh_from_db(fields=["trial_ends_at"])
        wanted = entitlements_for(customer)
        # At most one license of a customer is unrevoked: the current one.
        current = License.objects.filter(customer=customer, revoked_at__isnull=True).first()
        if current and _states(current) == wanted:
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
    return issued


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
