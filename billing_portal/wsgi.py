"""WSGI entry point (granian or gunicorn: billing_portal.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_portal.settings.base")

django_application = get_wsgi_application()

from licensing.api.fast import CheckAccessFrontDoor  # noqa: E402 - needs the apps loaded

# check-access's lean path answers plain checks in front of Django's handler.
application = CheckAccessFrontDoor(django_application)
