"""`manage.py license_key_rotate`: sign new licenses with a new key. The old key stays in
/.well-known/jwks.json for as long as licenses it signed are live; every instance signs
with the new key within SIGNING_KEY_RECHECK_SECONDS."""

from django.core.management.base import BaseCommand, CommandError

from licensing.licenses import license_key_rotate


class Command(BaseCommand):
    help = "Generate a new license signing key, sealed in the database, and make it current."

    def handle(self, *args, **options):
        try:
            kid = license_key_rotate()
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"New licenses are signed with key {kid}. Other instances pick it up within a minute."
        )
