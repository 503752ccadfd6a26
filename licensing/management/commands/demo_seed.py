"""Create the demo login and a support login for `make run` (idempotent)."""

from django.core.management.base import BaseCommand

from accounts.demo import DEMO_EMAIL, DEMO_PASSWORD, SUPPORT_EMAIL
from accounts.models import User
from accounts.services import email_verify
from licensing.services import customer_start


class Command(BaseCommand):
    help = "Create the demo customer login and a support (admin) login if they do not exist."

    def handle(self, *args, **options):
        if not User.objects.email_taken(DEMO_EMAIL):
            customer_start(email=DEMO_EMAIL, password=DEMO_PASSWORD, company_name="Demo Inc.")
            self.stdout.write(f"Created the demo login {DEMO_EMAIL}.")
        # Ready to add cards with no confirmation email to follow, also in a data dir from
        # before addresses were confirmed.
        email_verify(user=User.objects.get_by_natural_key(DEMO_EMAIL))
        if not User.objects.email_taken(SUPPORT_EMAIL):
            User.objects.create_superuser(email=SUPPORT_EMAIL, password=DEMO_PASSWORD)
            self.stdout.write(f"Created the support login {SUPPORT_EMAIL}.")
