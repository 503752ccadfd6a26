"""The Celery app; its configuration comes from Django settings prefixed CELERY_."""

import os

from celery import Celery

from . import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_portal.settings.base")

# filesystem:// (the embedded default) names our file transport, which writes whole messages.
broker.filesystem_transport_register()
app = Celery("billing_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
