"""Site-wide behaviour: health checks, error pages, deploy checks."""

import json
import os
import secrets
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from django.db import OperationalError
from django.urls import reverse

from billing_portal import health
from billing_portal.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent


def production_env(tmp_path, **values) -> dict:
    """The environment of a production process: none of the test run's switches."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SECRET_KEY", "DATABASE_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="billing_portal.settings.production",
        DJANGO_ALLOWED_HOSTS="billing.example.com",
        DATA_DIR=str(tmp_path),
        **values,
    )
    return env


def test_healthz_reports_database_and_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "broker": {"ok": True}},
    }
    assert "no-cache" in response["Cache-Control"]


def test_healthz_with_the_database_down_is_503_with_the_reason(client, db, monkeypatch):
    class DownConnection:
        def cursor(self):
            raise OperationalError("connection to server at 127.0.0.1 refused")

    monkeypatch.setattr(health, "connection", DownConnection())
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert "127.0.0.1" not in response.content.decode()
    assert body["checks"]["broker"] == {"ok": True}


def test_healthz_with_the_broker_unreachable_is_503(client, db, monkeypatch):
    # A Redis broker on a port where nothing listens: a real failed connection.
    # Celery reads the broker from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setitem(celery_app.conf, "broker_transport_options", {})
    response = client.get("/healthz")
    assert response.status_code == 503
    broker = response.json()["checks"]["broker"]
    assert broker["ok"] is False
    assert broker["error"].endswith("Error")


def test_unknown_url_is_our_404_page(client, db):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert b"Traceback" not in response.content


def test_static_css_is_served(client, db):
    response = client.get("/static/css/portal.css")
    assert response.status_code == 200


def test_login_page_is_readable_without_sign_in(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Forgot your password?" in response.content


def test_check_deploy_with_production_settings_is_clean(tmp_path):
    env = production_env(
        tmp_path,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        PORTAL_BASE_URL="https://billing.example.com",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = production_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("path", ["/", "/billing/"])
def test_pages_ask_anonymous_visitors_to_sign_in(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def production_python(tmp_path, database_url: str, script: str) -> str:
    """What `script` prints, run by Python in a production process set up with
    `database_url`."""
    env = production_env(
        tmp_path, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DATABASE_URL=database_url
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    "url, host, port",
    [
        ("postgres://portal:pw@%2Fvar%2Frun%2Fpostgresql/portal", "/var/run/postgresql", ""),
        ("postgres://portal:pw@%2fvar%2frun%2fpostgresql:5433/portal", "/var/run/postgresql", 5433),
        ("postgres://portal:pw@%2FTmp%2FPG:5433/portal", "/Tmp/PG", 5433),
        ("postgres://portal:pw@db.internal:5432/portal", "db.internal", 5432),
    ],
)
def test_database_url_may_name_a_unix_socket_directory_as_libpq_writes_it(
    tmp_path, url, host, port
):
    script = (
        "import json; from django.conf import settings; d = settings.DATABASES['default']; "
        "print(json.dumps({k: d[k] for k in ('HOST', 'PORT', 'NAME', 'USER')}))"
    )
    assert json.loads(production_python(tmp_path, url, script)) == {
        "HOST": host, "PORT": port, "NAME": "portal", "USER": "portal"
    }  # fmt: skip


@pytest.mark.django_db
def test_the_portal_connects_over_postgresqls_unix_socket(tmp_path):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute("SHOW unix_socket_directories")
        directory = cursor.fetchone()[0].split(",")[0].strip()
    if not directory:
        pytest.skip("this PostgreSQL listens on no Unix socket")
    port = connection.settings_dict["PORT"] or 5432
    user = connection.settings_dict["USER"]
    url = f"postgres://{user}@{urllib.parse.quote(directory, safe='')}:{port}/postgres"
    script = (
        "from django.db import connection; c = connection.cursor(); "
        "c.execute('SELECT inet_server_addr() IS NULL'); print(c.fetchone()[0])"
    )
    # No server address: a Unix socket, not TCP.
    assert production_python(tmp_path, url, script) == "True"
