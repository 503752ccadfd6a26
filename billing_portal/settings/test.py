"""Test settings: fast hashing, email kept in memory, Celery tasks run in the caller.

Tests that need a real worker (tests/test_celery_worker.py) switch eager mode off for
themselves and use CELERY_BROKER_URL from the environment (Redis in CI).
"""

import os
import tempfile
from pathlib import Path

# Tests keep their files (the embedded broker's queue, generated keys) out of the real data dir.
os.environ.setdefault("DATA_DIR", str(Path(tempfile.gettempdir()) / "billing-portal-tests"))

from billing_portal.testing.clock import clock_shift_from_environment

# TEST_CLOCK_START moves the whole session's clock (and its child processes') to a moment.
TEST_CLOCK_OFFSET = clock_shift_from_environment()

from .base import *  # noqa: F403, E402

SECRET_KEY = "test-only-secret-key-not-for-any-deployment"  # noqa: S105 - tests only
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
# Tests create their own lockouts where they test them.
AXES_ENABLED = False
# Billing is off unless a test turns it on.
STRIPE_SECRET_KEY = ""
BILLING_ENABLED = False
# A Stripe request inside a database transaction fails the test that makes it.
STRIPE_REFUSE_CALLS_IN_TRANSACTION = True
WHITENOISE_AUTOREFRESH = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file rather than shared-cache memory: concurrency tests need SQLite's real locking
    # (WAL and the busy timeout of the embedded default), as `make run` has it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}
    # Nothing of a test database needs to survive a power cut: no fsync.
    DATABASES["default"]["OPTIONS"]["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
    )
