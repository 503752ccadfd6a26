"""gunicorn bench.wsgi: the portal with bench.settings (a no-op view beside the API)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
application = get_wsgi_application()
