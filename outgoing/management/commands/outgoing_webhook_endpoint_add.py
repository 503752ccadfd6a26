"""`manage.py outgoing_webhook_endpoint_add URL`: register an endpoint, print its secret."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from outgoing.models import EventType
from outgoing.services import endpoint_create


class Command(BaseCommand):
    help = "Register an endpoint for the portal's outgoing webhooks and print its secret."

    def add_arguments(self, parser):
        parser.add_argument("url", help="Where events are POSTed.")
        parser.add_argument("--description", default="", help="Which service it is.")
        parser.add_argument(
            "--event",
            action="append",
            dest="events",
            choices=EventType.values,
            help="An event type to send (repeat for several); default: every type.",
        )

    def handle(self, *args, url: str, description: str, events, **options):
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise CommandError(f"Not an http(s) URL: {url}") from None
        endpoint = endpoint_create(url=url, description=description, event_types=events or [])
        types = ", ".join(endpoint.event_types) or "every event type"
        self.stdout.write(f"Endpoint {endpoint.pk} for {types}: {endpoint.url}")
        self.stdout.write(
            f"Signing secret (verify Billing-Portal-Signature with it):\n{endpoint.secret}"
        )
