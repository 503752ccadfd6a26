from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Customer, new_customer_id

NOW = timezone.now()


@pytest.mark.parametrize(
    ("remaining", "days_left"),
    [
        (timedelta(days=14), 14),
        (timedelta(days=13, hours=1), 14),
        (timedelta(hours=1), 1),
        (timedelta(seconds=1), 1),
        (timedelta(0), 0),
        (timedelta(days=-3), 0),
    ],
)
def test_trial_days_left_counts_a_started_day(remaining, days_left):
    customer = Customer(trial_ends_at=NOW + remaining)
    assert customer.trial_days_left(now=NOW) == days_left
    assert customer.is_trialing(now=NOW) is (remaining > timedelta(0))


def test_customer_ids_are_unique_and_prefixed():
    ids = {new_customer_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 37 and i.startswith("cust_") for i in ids)


def test_email_domain_is_normalised_but_login_part_kept(db):
    from accounts.models import User

    user = User.objects.create_user(email="Jane.Doe@EXAMPLE.com", password="x-long-password")
    assert user.email == "Jane.Doe@example.com"
    assert User.objects.get_by_natural_key("jane.doe@example.com") == user
