"""Fixtures shared by the whole suite. Every test that reads customer data gets two
customers (`membership` and `other_membership`), so a missing filter shows up."""

import os

import pytest

from tests.accounts.factories import PASSWORD, MembershipFactory


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def membership(db):
    return MembershipFactory(user__email="owner@example.com", customer__name="Acme Ltd")


@pytest.fixture
def other_membership(db):
    return MembershipFactory(user__email="someone-else@example.com", customer__name="Globex")


@pytest.fixture
def signed_in_client(client, membership, other_membership):
    client.force_login(membership.user)
    return client


@pytest.fixture(autouse=True)
def _fresh_signing_key_cache():
    """The signing key is cached per process; each test has a fresh database."""
    from licensing.licenses import signing_key

    signing_key.cache_clear()
    yield
    signing_key.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_limits_cache():
    """check-access keeps the catalog's limits in memory; each test has its own catalog."""
    from licensing.entitlements import limits_cache_clear

    limits_cache_clear()
    yield
    limits_cache_clear()


@pytest.fixture(autouse=True)
def _fresh_service_key_cache():
    """Valid service keys are remembered per process; each test has its own keys."""
    from licensing.api.authentication import service_key_cache_clear

    service_key_cache_clear()
    yield
    service_key_cache_clear()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The throttles count in the cache, which outlives a test's database."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def pytest_report_header(config):
    from billing_portal.testing.clock import START_VARIABLE

    moment = os.environ.get(START_VARIABLE)
    return f"clock: the session starts at {moment} ({START_VARIABLE})" if moment else None
