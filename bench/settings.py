"""Settings for `make bench`: the real ones, with tables made straight from the models (no
migrations: dj-stripe's take about 50 s) in a throwaway data dir."""

from billing_portal.settings.base import *  # noqa: F403
from billing_portal.settings.base import INSTALLED_APPS

MIGRATION_MODULES = {app.rsplit(".", 1)[-1]: None for app in INSTALLED_APPS}
DEBUG = False
LOGGING = {"version": 1, "disable_existing_loggers": False}
AXES_ENABLED = False
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None
