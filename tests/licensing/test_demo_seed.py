from django.core.management import call_command

from accounts.demo import DEMO_EMAIL, SUPPORT_EMAIL
from accounts.models import Customer, User


def test_demo_seed_makes_a_confirmed_demo_login_once(catalog, other_membership):
    call_command("demo_seed")
    call_command("demo_seed")

    demo = User.objects.get(email=DEMO_EMAIL)
    assert demo.is_email_verified
    assert Customer.objects.for_user(demo).count() == 1
    assert User.objects.get(email=SUPPORT_EMAIL).is_staff


def test_demo_seed_confirms_a_demo_login_made_before_confirmation_existed(catalog, db):
    call_command("demo_seed")
    User.objects.filter(email=DEMO_EMAIL).update(email_verified_at=None)

    call_command("demo_seed")

    assert User.objects.get(email=DEMO_EMAIL).is_email_verified
