"""Settings shared by every environment, read from the environment with django-environ.

Every setting a deployment may change is listed in `.env.example`. Without any environment
at all this runs the embedded setup of `make run`: SQLite and a file-based Celery broker
under the data dir, console email, billing disabled.
"""

import secrets
import urllib.parse
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

# Everything the portal writes to disk (SQLite, the embedded broker, generated keys).
DATA_DIR = Path(env("DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_from_data_dir(name: str) -> str:
    """A random secret generated once into the data dir, for installs that set none."""
    path = DATA_DIR / name
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


# --- Core -----------------------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or _secret_from_data_dir("django_secret_key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Where the portal is reached: webhooks, Checkout's return pages, license `iss`, email links.
# Unset, it is where `make run` serves (PORT), so moving the port moves every URL with it.
_port = env.int("PORT", default=8000)
PORTAL_BASE_URL = (env("PORTAL_BASE_URL", default="") or f"http://127.0.0.1:{_port}").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[PORTAL_BASE_URL])

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]
THIRD_PARTY_APPS = [
    "axes",
    "djstripe",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
LOCAL_APPS = [
    "accounts",
    "audit",
    "outgoing",
    "licensing",
    "billing",
    "support",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Near the top, so that no error page on /api/ below it stays HTML.
    "licensing.api.middleware.api_errors_as_json",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns lockouts into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "billing_portal.urls"
# `bench/http_compare.py` turns this on: GET /bench/noop answers `{}` through the whole
# middleware stack, to measure the server itself beside check-access.
BENCH_NOOP_VIEW = env.bool("BENCH_NOOP_VIEW", default=False)
WSGI_APPLICATION = "billing_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "billing.context_processors.billing",
                "accounts.context_processors.accounts",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

# An empty value counts as unset, as for every URL setting below.
DATABASES = {
    "default": env.db_url_config(
        env("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
    ),
}
# A PostgreSQL on this host can be reached over its Unix socket, written as libpq writes
# it: postgres://user@%2Fvar%2Frun%2Fpostgresql/portal. django-environ leaves the
# directory percent-encoded (and lower-cases it as a host name), so it is decoded here.
if DATABASES["default"].get("HOST", "").lower().startswith("%2f"):
    _socket_url = urllib.parse.urlsplit(env("DATABASE_URL"))
    DATABASES["default"]["HOST"] = urllib.parse.unquote(
        _socket_url.netloc.rsplit("@", 1)[-1].rsplit(":", 1)[0]
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Webhook processing holds a write transaction while the web server answers other
    # requests: WAL lets readers through, and writers wait instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
# Keep connections between requests (opening one costs more than check-access itself).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# check-access's queries are prepared statements on PostgreSQL, planned once per connection
# (licensing/fastsql.py; every other query binds in the client and is never prepared, and
# psycopg prepares nothing itself). Turn off behind a pooler that cannot keep prepared
# statements (PgBouncer before 1.21 in transaction mode).
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", None)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The throttles of password resets and signup emails count in the cache: per process by
# default; give several web processes one shared cache (redis://host:6379/1) so they count
# together.
CACHES = {"default": env.cache_url_config(env("CACHE_URL", default="") or "locmemcache://")}

# --- Accounts -------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# auth.W004 asks for a unique USERNAME_FIELD; ours is unique in any letter case through the
# accounts_user_email_ci_unique constraint, and UserManager.get_by_natural_key matches it.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]

TRIAL_DAYS = env.int("TRIAL_DAYS", default=14)
# From the first failed payment, a past-due customer keeps their plan's features this long.
PAST_DUE_GRACE_DAYS = env.int("PAST_DUE_GRACE_DAYS", default=7)

# Login throttling: five failures for one email from one address lock it for an hour, and
# (accounts.throttling.LoginThrottleHandler) twenty failures from one address, whatever the
# emails, lock the address: one client cannot try a password against many accounts.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
AXES_COOLOFF_TIME = 1
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "accounts.throttling.LoginThrottleHandler"
AXES_LOCKOUT_TEMPLATE = "accounts/locked.html"
AXES_RESET_ON_SUCCESS = True
# One counter per address whatever its letter case, as logins are case-insensitive.
AXES_USERNAME_CALLABLE = "accounts.throttling.login_username"

# --- Email ----------------------------------------------------------------------------------

vars().update(env.email_url_config(env("EMAIL_URL", default="") or "consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Billing Portal <billing@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Stripe and dj-stripe -------------------------------------------------------------------

STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_PUBLIC_KEY = STRIPE_PUBLISHABLE_KEY
# Unset means Stripe itself; the local emulator's URL otherwise (billing.gateway applies it,
# for dj-stripe too).
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_API_VERSION = "2026-08-26.dahlia"
# One HTTP client carries every Stripe request, dj-stripe's too (billing.gateway): a page that
# needs Stripe answers within about (1 + retries) x (connect + read) seconds when it hangs.
STRIPE_CONNECT_TIMEOUT = env.float("STRIPE_CONNECT_TIMEOUT", default=3.0)
STRIPE_READ_TIMEOUT = env.float("STRIPE_READ_TIMEOUT", default=10.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=1)
# Tests turn this on: a Stripe request while a database transaction is open then raises
# instead of being logged as an error.
STRIPE_REFUSE_CALLS_IN_TRANSACTION = env.bool("STRIPE_REFUSE_CALLS_IN_TRANSACTION", default=False)
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
# Without a key the portal runs with billing switched off: see billing.views.
BILLING_ENABLED = bool(STRIPE_SECRET_KEY)
# How often beat syncs the current invoices to Stripe, and the request rate a bulk sync
# keeps under (Stripe allows about 25 a second in test mode, 100 live).
INVOICE_SYNC_INTERVAL_SECONDS = env.int("INVOICE_SYNC_INTERVAL_SECONDS", default=15 * 60)
STRIPE_REQUESTS_PER_SECOND = env.float("STRIPE_REQUESTS_PER_SECOND", default=20.0)
# Test mode only: each new Stripe customer gets a test clock of its own, so
# `stripe_clock_advance` can move it through billing cycles (ignored with a live key).
STRIPE_TEST_CLOCKS = env.bool("STRIPE_TEST_CLOCKS", default=False)

# --- Licenses and the API -------------------------------------------------------------------

# Ed25519 private key (PEM text or a file path) that signs licenses; default: one generated
# into DATA_DIR on first use.
LICENSE_SIGNING_KEY = env("LICENSE_SIGNING_KEY", default="")
# Customers' bearer tokens from an identity provider (Okta, Auth0…) for /api/v1/me/.
OIDC_ISSUER = env("OIDC_ISSUER", default="")
OIDC_AUDIENCE = env("OIDC_AUDIENCE", default="")
OIDC_JWKS_URL = env("OIDC_JWKS_URL", default="")
# The identity token's claim naming the person's organization (e.g. org_id; empty: off),
# and the role a verified member of a linked organization joins its account with.
OIDC_ORG_CLAIM = env("OIDC_ORG_CLAIM", default="")
OIDC_ORG_DEFAULT_ROLE = env("OIDC_ORG_DEFAULT_ROLE", default="member")
if OIDC_ORG_DEFAULT_ROLE not in {"owner", "billing", "member"}:
    raise ImproperlyConfigured("OIDC_ORG_DEFAULT_ROLE must be owner, billing or member.")

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "licensing.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing Portal API",
    "DESCRIPTION": "Entitlements, usage and licenses for the business's own services.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"

# --- Celery ---------------------------------------------------------------------------------

# The default broker keeps its queue in files under the data dir, so `make run` has a real
# worker and beat with no server installed. Production and docker-compose use Redis.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = DATA_DIR / "celery-queue"
    _queue_dir.mkdir(exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(DATA_DIR / "celery-control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "trial-ending-reminders": {
        "task": "licensing.tasks.trial_ending_reminders_send",
        "schedule": 60 * 60,
    },
    # The current invoices' lines, sent to Stripe by diff (nothing changed: no request).
    "invoices-sync": {
        "task": "billing.tasks.invoices_sync",
        "schedule": INVOICE_SYNC_INTERVAL_SECONDS,
    },
    # Webhooks that never came (or failed) are found in Stripe's events list.
    "stripe-events-reconcile": {
        "task": "billing.tasks.events_reconcile",
        "schedule": 10 * 60,
    },
    # Outgoing webhook retries that were lost (a worker died) are sent again.
    "outgoing-deliveries-resume": {
        "task": "outgoing.tasks.outgoing_deliveries_resume",
        "schedule": 10 * 60,
    },
}
CELERY_TIMEZONE = "UTC"

# --- Internationalisation, static files -----------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve static files straight from the app folders unless collectstatic has been run.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# --- Logging --------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Axes logs every start and every attempt at INFO; lockouts are WARNINGs.
        "axes": {"level": "WARNING"},
        # stripe-python logs every request at INFO.
        "stripe": {"level": "WARNING"},
    },
}

# Every GDPR erasure is also appended here, outside the database, so that `manage.py
# erasures_reapply` can erase those people again after a backup is restored.
ERASURE_LOG_PATH = Path(env("ERASURE_LOG_PATH", default=str(DATA_DIR / "erasures.jsonl")))
