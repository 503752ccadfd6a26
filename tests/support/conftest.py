"""Support staff of each kind, and a customer with a real Stripe customer, cards, a paid
plan and invoices, made through the emulator as the portal's own flows make them."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from support.permissions import READ_ONLY_GROUP, SUPPORT_GROUP, support_groups_ensure
from tests.accounts.factories import UserFactory
from tests.billing.conftest import stripe_client, stripe_emulator  # noqa: F401 - shared fixtures
from tests.billing.test_admin_sweep import every_model_has_data  # noqa: F401 - shared fixture


def staff_client(email: str, group: str | None, *, superuser: bool = False) -> Client:
    support_groups_ensure()
    user = UserFactory(email=email, is_staff=True, is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def support_client(db):
    return staff_client("support@example.com", SUPPORT_GROUP)


@pytest.fixture
def read_only_client(db):
    return staff_client("readonly@example.com", READ_ONLY_GROUP)


@pytest.fixture
def superuser_client(db):
    return staff_client("root@example.com", None, superuser=True)
