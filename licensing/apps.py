from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LicensingConfig(AppConfig):
    """Plans, features, entitlements and signed licenses. Never talks to Stripe."""

    name = "licensing"
    verbose_name = "Licensing"

    def ready(self) -> None:
        from .api import schema  # noqa: F401 - registers the API's bearer schemes
        from .standing_versions import standing_versions_install

        post_migrate.connect(standing_versions_install, sender=self)
