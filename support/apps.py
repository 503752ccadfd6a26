from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SupportConfig(AppConfig):
    """Support staff's console: one page per customer, audited actions, GDPR export and
    erase. It sits on top of every other app and nothing imports it."""

    name = "support"
    verbose_name = "Support"

    def ready(self) -> None:
        from .permissions import support_groups_ensure

        post_migrate.connect(support_groups_ensure, sender=self)
