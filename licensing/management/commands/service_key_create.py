"""`manage.py service_key_create NAME`: a key for one of the business's services."""

from django.core.management.base import BaseCommand

from licensing.api.authentication import service_key_create


class Command(BaseCommand):
    help = "Create a service API key for check-access and usage; it is printed only once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Which service will use the key.")

    def handle(self, *args, name: str, **options):
        record, key = service_key_create(name=name)
        self.stdout.write(f"Service API key for {record.name!r} (shown only now):\n{key}")
