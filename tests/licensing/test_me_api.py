"""GET /api/v1/me/: the portal session, or a bearer token from the identity provider,
verified against its JWKS; every kind of bad token is a 401 with its own code."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.urls import reverse

from licensing.api.authentication import _jwks_client
from licensing.licenses import license_refresh

ME = reverse("api_me")
ISSUER = "https://idp.example.com/"
AUDIENCE = "billing-portal"
# RSA keys are slow to make: one for the identity provider, one for a stranger.
IDP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def idp(settings):
    """An identity provider: an RSA key, its JWKS served over HTTP on loopback."""
    key = IDP_KEY
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "RS256"}]}).encode()

    class JWKS(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), JWKS)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.OIDC_JWKS_URL = f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    settings.OIDC_ISSUER = ISSUER
    settings.OIDC_AUDIENCE = AUDIENCE
    _jwks_client.cache_clear()
    yield key
    _jwks_client.cache_clear()
    server.shutdown()
    server.server_close()


def token(key, *, algorithm="RS256", kid="idp-1", **overrides):
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "idp|123",
        "email": "OWNER@example.com",
        "email_verified": True,
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
        **overrides,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def me(client, bearer):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {bearer}")


def test_a_valid_identity_token_maps_to_the_user_by_email(
    client, idp, membership, other_membership, catalog
):
    license_refresh(customer=membership.customer)
    response = me(client, token(idp))
    assert response.status_code == 200
    body = response.json()
    assert body["account"]["customer_id"] == membership.customer.customer_id
    assert body["plan"] == {"code": "trial", "status": "trialing"}
    assert {u["feature"] for u in body["usage"]} == {"api_calls", "projects"}
    assert body["license"]["token"].count(".") == 2


def test_the_portal_session_works_too(signed_in_client, membership, catalog):
    response = signed_in_client.get(ME)
    assert response.status_code == 200
    assert response.json()["account"]["customer_id"] == membership.customer.customer_id


def test_no_credentials_is_401(client, membership):
    assert client.get(ME).status_code == 401


def hmac_with_the_public_key(key):
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(token(key), options={"verify_signature": False})
    # PyJWT refuses to sign HMAC with a PEM key, so build the token by hand, as an attacker would.
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "idp-1"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(claims).encode())
    import hashlib
    import hmac

    signature = hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    return (header + b"." + payload + b"." + jwt.utils.base64url_encode(signature)).decode()


def unsigned(key):
    claims = jwt.decode(token(key), options={"verify_signature": False})
    return jwt.encode(claims, None, algorithm="none")


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda key: token(key, exp=int(time.time()) - 60), "token_expired"),
        (lambda key: token(key, aud="another-app"), "invalid_audience"),
        (lambda key: token(key, iss="https://evil.example.com/"), "invalid_issuer"),
        (unsigned, "algorithm_not_allowed"),
        (hmac_with_the_public_key, "algorithm_not_allowed"),
        (
            lambda key: token(STRANGER_KEY, kid="other"),
            "unknown_signing_key",
        ),
        (
            lambda key: token(STRANGER_KEY),
            "invalid_token",
        ),
        (lambda key: token(key, email=None), "token_without_email"),
        (lambda key: token(key, email_verified=False), "email_not_verified"),
        (lambda key: token(key, email_verified=None), "email_not_verified"),
        (lambda key: token(key, exp=None), "invalid_token"),
        (lambda key: token(key, email="stranger@example.com"), "unknown_user"),
        (lambda key: "not-a-jwt", "invalid_token"),
    ],
    ids=[
        "expired",
        "audience",
        "issuer",
        "alg-none",
        "hmac-public-key",
        "unknown-key",
        "wrong-key-same-kid",
        "no-email",
        "email-unverified",
        "email-verified-missing",
        "no-exp",
        "unknown-user",
        "garbage",
    ],
)
def test_bad_identity_tokens_are_401(client, idp, membership, make, code):
    response = me(client, make(idp))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
