"""Verify a Billing Portal license offline:

    python -m licensing.verify TOKEN_OR_FILE --jwks https://billing.example.com/.well-known/jwks.json

`--jwks` takes a URL or a file holding the JWKS. Prints the license's claims, or the exact
reason it does not verify (exit status 1). Needs PyJWT with cryptography, not Django.
"""

import argparse
import json
import sys
import urllib.request
from pathlib import Path

import jwt

AUDIENCE = "billing-portal-license"


class LicenseInvalid(Exception):
    """Why a license does not verify, in words fit to print."""


def jwks_load(source: str) -> dict:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as response:  # noqa: S310 - http(s) only
            return json.load(response)
    return json.loads(Path(source).read_text())


def license_verify(token: str, jwks: dict, *, issuer: str | None = None) -> dict:
    """The claims of a license signed by one of the JWKS's keys, or LicenseInvalid."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as error:
        raise LicenseInvalid(f"not a JWT: {error}") from None
    if header.get("alg") != "EdDSA":
        raise LicenseInvalid(f"signed with {header.get('alg')!r}, not EdDSA")
    keys = {key.get("kid"): key for key in jwks.get("keys", [])}
    if header.get("kid") not in keys:
        raise LicenseInvalid(f"signed by unknown key {header.get('kid')!r}")
    public_key = jwt.PyJWK(keys[header["kid"]]).key
    try:
        return jwt.decode(
            token,
            public_key,
            algorithms=["EdDSA"],
            audience=AUDIENCE,
            issuer=issuer,
            options={"require": ["exp", "iat", "nbf", "sub", "jti", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise LicenseInvalid("expired") from None
    except jwt.ImmatureSignatureError:
        raise LicenseInvalid("not valid yet (nbf is in the future)") from None
    except jwt.InvalidSignatureError:
        raise LicenseInvalid("the signature does not match: altered, or another key") from None
    except jwt.InvalidTokenError as error:
        raise LicenseInvalid(str(error)) from None


def _is_file(argument: str) -> bool:
    try:
        return Path(argument).is_file()
    except OSError:  # a token is too long to be a file name
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m licensing.verify", description=__doc__)
    parser.add_argument("license", help="the license token, or a file that holds it")
    parser.add_argument("--jwks", required=True, help="URL or file of the portal's JWKS")
    parser.add_argument("--issuer", help="also require this issuer (the portal's URL)")
    args = parser.parse_args(argv)
    token = args.license.strip()
    try:
        if _is_file(token):
            token = Path(token).read_text().strip()
        jwks = jwks_load(args.jwks)
    except (OSError, ValueError) as error:
        print(f"Cannot read: {error}", file=sys.stderr)
        return 2
    try:
        claims = license_verify(token, jwks, issuer=args.issuer)
    except LicenseInvalid as error:
        print(f"License invalid: {error}", file=sys.stderr)
        return 1
    print(json.dumps(claims, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
