from datetime import timedelta

import factory
from django.conf import settings
from django.utils import timezone

from accounts.models import Customer, Membership, User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password(PASSWORD)
    # Confirmed, as most tests need; UserFactory(email_verified_at=None) for a new signup.
    email_verified_at = factory.LazyFunction(timezone.now)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Company {n}")
    trial_ends_at = factory.LazyFunction(
        lambda: timezone.now() + timedelta(days=settings.TRIAL_DAYS)
    )


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    customer = factory.SubFactory(CustomerFactory)
    role = Membership.Role.OWNER
