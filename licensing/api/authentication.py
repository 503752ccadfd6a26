"""Who is calling the API: another service of the business (a service API key), or a
customer (the portal session, or a bearer token from the business's identity provider)."""

import functools
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

import jwt
from django.conf import settings
from django.db import connection
from rest_framework import authentication, exceptions

from accounts.members import identity_organization_membership
from accounts.models import Customer, User
from licensing.models import ServiceAPIKey

KEY_PREFIX = "bp_"
# Identity tokens must be signed with one of these; never `none`, never HMAC (whose
# "secret" an attacker could take from the public JWKS).
IDENTITY_ALGORITHMS = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
]  # fmt: skip


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def service_key_create(*, name: str) -> tuple[ServiceAPIKey, str]:
    """A new key; the key itself is returned only here, to be shown once."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ServiceAPIKey.objects.create(name=name, prefix=key[:11], key_hash=key_hash(key))
    return record, key


def _bearer(request) -> str | None:
    header = authentication.get_authorization_header(request).decode(errors="replace")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# A valid key is remembered by its hash for this long in each process: check-access then
# costs no query for it. Revoking a key takes effect at once in the process that revoked it
# (`service_key_cache_clear`), and in every other within this lifetime.
SERVICE_KEY_CACHE_SECONDS = 30
_service_keys: dict[str, tuple[int, str, float]] = {}
_service_keys_lock = threading.Lock()


def service_key_cache_clear() -> None:
    with _service_keys_lock:
        _service_keys.clear()


def _remembered(digest: str, now: float) -> tuple[int, str, float] | None:
    """The process's entry for a key's hash, if it is within its lifetime."""
    hit = _service_keys.get(digest)
    return hit if hit is not None and now - hit[2] < SERVICE_KEY_CACHE_SECONDS else None


def service_key_known(token: str) -> bool:
    """Whether `token` is an unrevoked key, as `service_key_lookup` says, without making
    the record (check-access's lean path needs no more)."""
    if _remembered(key_hash(token), time.monotonic()) is not None:
        return True
    return service_key_lookup(token) is not None


def service_key_lookup(token: str) -> ServiceAPIKey | None:
    """The unrevoked key `token` is, from the process's cache or one query; None if none."""
    digest = key_hash(token)
    now = time.monotonic()
    if (hit := _remembered(digest, now)) is not None:
        return ServiceAPIKey(id=hit[0], name=hit[1])
    # Written out: on check-access's hot path the ORM costs far more than the query.
    table = connection.ops.quote_name(ServiceAPIKey._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, name FROM {table} WHERE key_hash = %s AND revoked_at IS NULL",  # noqa: S608
            [digest],
        )
        row = cursor.fetchone()
    with _service_keys_lock:
        if row is None:
            _service_keys.pop(digest, None)
            return None
        # Only real keys are kept, so the cache holds at most as many entries as keys exist.
        _service_keys[digest] = (row[0], row[1], now)
    return ServiceAPIKey(id=row[0], name=row[1])


class ServiceKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer bp_…`, a key made by `manage.py service_key_create`."""

    def authenticate(self, request):
        token = _bearer(request)
        if token is None:
            return None
        record = service_key_lookup(token)
        if record is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.", "invalid_api_key")
        return (record, record)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


@functools.cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


@dataclass(frozen=True)
class IdentityToken:
    """`request.auth` of a caller with an identity token: the token, and the account its
    organization claim maps to (None: the person's own memberships decide)."""

    token: str
    customer_id: str | None


def identity_token_user(token: str) -> User:
    """The user an identity provider's token names by its `email` claim."""
    return identity_token_verify(token)[0]


def identity_token_verify(token: str) -> tuple[User, dict]:
    """The user an identity provider's token names by its `email` claim, and its claims."""
    if not settings.OIDC_JWKS_URL:
        raise exceptions.AuthenticationFailed(
            "Identity tokens are not accepted here.", "identity_tokens_disabled"
        )
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
        if algorithm not in IDENTITY_ALGORITHMS:
            raise exceptions.AuthenticationFailed(
                f"Tokens signed with {algorithm!r} are not accepted.", "algorithm_not_allowed"
            )
        key = _jwks_client(settings.OIDC_JWKS_URL).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=settings.OIDC_AUDIENCE,
            issuer=settings.OIDC_ISSUER,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise exceptions.AuthenticationFailed("The token has expired.", "token_expired") from None
    except jwt.InvalidAudienceError:
        raise exceptions.AuthenticationFailed(
            "The token is for another audience.", "invalid_audience"
        ) from None
    except jwt.InvalidIssuerError:
        raise exceptions.AuthenticationFailed(
            "The token is from another issuer.", "invalid_issuer"
        ) from None
    except jwt.PyJWKClientError as error:
        raise exceptions.AuthenticationFailed(
            f"The token's signing key is unknown: {error}", "unknown_signing_key"
        ) from None
    except jwt.InvalidTokenError as error:
        raise exceptions.AuthenticationFailed(f"Invalid token: {error}", "invalid_token") from None
    email = claims.get("email")
    if not email:
        raise exceptions.AuthenticationFailed(
            "The token has no `email` claim, so it names no user here.", "token_without_email"
        )
    if claims.get("email_verified") is not True:
        # Where users sign up at the provider, an unverified email may be anybody's.
        raise exceptions.AuthenticationFailed(
            "The token's email is not verified by the identity provider.", "email_not_verified"
        )
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    if user is None:
        raise exceptions.AuthenticationFailed("No user has the token's email.", "unknown_user")
    return user, claims


def identity_token_account(*, user: User, claims: dict) -> str | None:
    """The account the token's organization claim (OIDC_ORG_CLAIM) maps to, joined with
    the default role when the verified person is not a member yet; None when the setting
    is off, the claim is absent, or the organization is linked to no account."""
    if not settings.OIDC_ORG_CLAIM:
        return None
    org_id = claims.get(settings.OIDC_ORG_CLAIM)
    if not isinstance(org_id, str) or not org_id:
        return None
    membership = identity_organization_membership(user=user, org_id=org_id)
    return membership.customer_id if membership else None


class IdentityTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <JWT from OIDC_ISSUER>`, verified against OIDC_JWKS_URL."""

    def authenticate(self, request):
        token = _bearer(request)
        if token is None:
            return None
        user, claims = identity_token_verify(token)
        return (user, IdentityToken(token, identity_token_account(user=user, claims=claims)))

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ServiceKeyOrIdentityTokenAuthentication(authentication.BaseAuthentication):
    """For the read APIs, which both kinds of caller use: a bearer `bp_…` is a service key
    (it reads every customer), any other bearer an identity token (its user's accounts)."""

    def authenticate(self, request):
        token = _bearer(request)
        if token is None:
            return None
        if token.startswith(KEY_PREFIX):
            return ServiceKeyAuthentication().authenticate(request)
        return IdentityTokenAuthentication().authenticate(request)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def readable_customers(request):
    """The customers the caller may read: every one for a service key, else only the
    accounts the signed-in (or token-named) user belongs to; never taken from an argument."""
    if isinstance(request.auth, ServiceAPIKey):
        return Customer.objects.all()
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return Customer.objects.none()
    return Customer.objects.for_user(user)
