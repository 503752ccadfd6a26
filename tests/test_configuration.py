"""Every environment variable the settings read is documented in .env.example."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_SETTINGS = {
    "DATABASE_URL", "CELERY_BROKER_URL", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_API_BASE", "PORTAL_BASE_URL", "LICENSE_SIGNING_KEY", "OIDC_ISSUER",
    "OIDC_AUDIENCE", "OIDC_JWKS_URL", "EMAIL_URL", "TRIAL_DAYS", "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "PORT", "STRIPE_EMULATOR_PORT",
}  # fmt: skip


def documented() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def read_by_settings() -> set[str]:
    names = set()
    for path in (ROOT / "billing_portal" / "settings").glob("*.py"):
        names |= set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", path.read_text()))
    return names


def test_env_example_lists_every_setting_read():
    assert read_by_settings(), "the pattern found no env() calls: fix the test"
    assert read_by_settings() - documented() == set()


def test_env_example_lists_every_setting_of_the_product_spec():
    assert PRODUCT_SETTINGS - documented() == set()
