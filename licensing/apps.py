from django.apps import AppConfig


class LicensingConfig(AppConfig):
    """Plans, features, entitlements and signed licenses. Never talks to Stripe."""

    name = "licensing"
    verbose_name = "Licensing"

    def ready(self) -> None:
        from .api import schema  # noqa: F401 - registers the API's bearer schemes
