"""Two web instances and two Celery workers on one PostgreSQL and one Redis, and nothing
else shared: each has its own data dir (no common disk), as behind a load balancer.

A short journey crosses them: sign up on instance A (A signs the license); the confirmation
email is sent by whichever worker takes the task from Redis; the link is followed on
instance B, which signs the person in (sessions live in the database); the license is
downloaded from B and verified offline against A's and B's JWKS; a usage report posted to
A is counted by check-access on B. Run by `.ci/run` after the test suites:

    python scripts/scaleout_journey.py postgres://postgres@127.0.0.1:25432/db redis://127.0.0.1:26379/2

The database must exist and be empty; the script migrates it. It prints each step and
exits non-zero on the first that fails.
"""

import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
READY_SECONDS = 60
MAIL_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def step(text: str) -> None:
    print(f"-- {text}", flush=True)


class Instance:
    """One web server or worker: its own data dir, mail dir and log."""

    def __init__(self, name: str, work: Path, common: dict[str, str]) -> None:
        self.name = name
        self.data_dir = work / name
        self.mail_dir = self.data_dir / "mail"
        self.mail_dir.mkdir(parents=True)
        self.log = self.data_dir / "log.txt"
        self.env = {
            **common,
            "DATA_DIR": str(self.data_dir),
            "EMAIL_URL": f"filemail:///{self.mail_dir}",
        }
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def start(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""


class Web(Instance):
    def __init__(self, name: str, work: Path, common: dict[str, str]) -> None:
        super().__init__(name, work, common)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def serve(self) -> None:
        self.start(
            [PYTHON, "-m", "gunicorn", "billing_portal.wsgi", "--bind", f"{HOST}:{self.port}",
             "--workers", "2", "--threads", "2",
             "--control-socket", str(self.data_dir / "gunicorn.ctl")]
        )  # fmt: skip

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:  # refused, reset or timed out while it boots
                time.sleep(0.3)
        raise SystemExit(f"{self.name} did not become healthy:\n{self.tail()}")

    def request(
        self, path: str, *, data: dict | None = None, headers: dict | None = None, body=None
    ):
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(self.url + path, data=body, headers=headers or {})  # noqa: S310
        try:
            with self.opener.open(request, timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def csrf_token(self, path: str) -> str:
        status, page = self.request(path)
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or match is None:
            raise SystemExit(f"{self.name} {path}: no form ({status})")
        return match.group(1).decode()


def wait_for_mail(workers: list[Instance], pattern: str, *, to: str) -> tuple[str, str]:
    """(worker name, match) of the first email to `to` either worker wrote that matches."""
    deadline = time.monotonic() + MAIL_SECONDS
    while time.monotonic() < deadline:
        for worker in workers:
            for message in sorted(worker.mail_dir.glob("*.log")):
                text = message.read_text()
                if f"To: {to}" in text and (match := re.search(pattern, text)):
                    return worker.name, match.group(0)
        time.sleep(0.3)
    raise SystemExit("No worker sent the confirmation email:\n" + workers[0].tail())


def person_journey(*, signs_up_on: Web, confirms_on: Web, workers: list[Instance]) -> dict:
    """Sign up on one instance, confirm and download the license on the other, verify it
    against both instances' JWKS; returns its claims and kid."""
    import jwt

    a, b = signs_up_on, confirms_on
    email = f"scaleout-{secrets.token_hex(4)}@example.com"
    a.cookies.clear()  # signed out: a signed-in visitor is sent home, not signed up
    token = a.csrf_token("/accounts/signup/")
    status, _ = a.request(
        "/accounts/signup/",
        data={"csrfmiddlewaretoken": token, "email": email, "password": secrets.token_urlsafe(16)},
        headers={"Referer": a.url + "/accounts/signup/"},
    )
    if status != 200:
        raise SystemExit(f"signup on {a.name} answered {status}")
    step(f"signed up {email} on {a.name}")

    pattern = r"https?://\S+/accounts/verify/\S+/"
    sender, link = wait_for_mail(workers, pattern, to=email)
    step(f"its confirmation email was sent by {sender}")
    path = urllib.parse.urlsplit(link).path
    b.cookies.clear()
    token = b.csrf_token(path)  # the link shows a button; confirming signs in
    status, _ = b.request(
        path, data={"csrfmiddlewaretoken": token}, headers={"Referer": b.url + path}
    )
    if status != 200:
        raise SystemExit(f"confirming on {b.name} answered {status}")
    status, license_token = b.request("/license/download/")
    if status != 200 or not license_token.startswith(b"ey"):
        raise SystemExit(f"license download on {b.name} answered {status}: {license_token[:200]!r}")
    kid = jwt.get_unverified_header(license_token)["kid"]
    for web in (a, b):
        _, body = web.request("/.well-known/jwks.json")
        keys = {key["kid"]: key for key in json.loads(body)["keys"]}
        if kid not in keys:
            raise SystemExit(f"{web.name}'s JWKS does not publish {kid}: {sorted(keys)}")
        claims = jwt.decode(
            license_token,
            jwt.PyJWK(keys[kid]).key,
            algorithms=["EdDSA"],
            audience="billing-portal-license",
        )
        step(f"the license ({claims['sub']}, key {kid[:8]}…) verifies with {web.name}'s JWKS")
    return {**claims, "kid": kid}


def journey(database_url: str, broker_url: str, work: Path) -> None:
    common = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "billing_portal.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CACHE_URL": broker_url.rsplit("/", 1)[0] + "/15",
        "STRIPE_SECRET_KEY": "",
    }
    a, b = Web("web-a", work, common), Web("web-b", work, common)
    workers = [Instance("worker-a", work, common), Instance("worker-b", work, common)]
    for web in (a, b):
        web.env["PORTAL_BASE_URL"] = web.url
    for worker in workers:
        worker.env["PORTAL_BASE_URL"] = a.url
    everything = [a, b, *workers]
    try:
        step("migrate, load the catalog, collect static files (once: database and code are shared)")
        a.manage("migrate", "--noinput")
        a.manage("stripe_setup")  # as docker-compose does: with billing off, the catalog only
        a.manage("collectstatic", "--noinput")
        for worker in workers:
            worker.start(
                [PYTHON, "-m", "celery", "-A", "billing_portal", "worker", "--loglevel", "INFO",
                 "--concurrency", "1", "--hostname", f"{worker.name}@%h"]
            )  # fmt: skip
        a.serve()
        b.serve()
        a.wait_ready()
        b.wait_ready()
        step(f"two web instances ({a.url}, {b.url}) and two workers are up")

        first = person_journey(signs_up_on=a, confirms_on=b, workers=workers)
        second = person_journey(signs_up_on=b, confirms_on=a, workers=workers)
        if first["kid"] != second["kid"]:
            raise SystemExit(f"A and B signed with different keys: {first['kid']}, {second['kid']}")
        step("A and B sign licenses with the same key")
        claims = first
        output = a.manage("service_key_create", "scaleout-journey")
        service_key = output.strip().splitlines()[-1]
        api = {"Authorization": f"Bearer {service_key}", "Content-Type": "application/json"}
        usage = {"customer_id": claims["sub"], "feature": "api_calls", "quantity": 7,
                 "idempotency_key": "scaleout-journey-1"}  # fmt: skip
        status, body = a.request("/api/v1/usage", headers=api, body=json.dumps(usage).encode())
        if status != 201:
            raise SystemExit(f"usage on A answered {status}: {body[:300]!r}")
        question = {"customer_id": claims["sub"], "feature": "api_calls"}
        status, body = b.request(
            "/api/v1/check-access", headers=api, body=json.dumps(question).encode()
        )
        answer = json.loads(body)
        if status != 200 or answer.get("usage", {}).get("used") != 7:
            raise SystemExit(f"check-access on B answered {status}: {answer}")
        step("7 api_calls posted to A are counted by check-access on B")
        print("scale-out journey: 2 web instances, 2 workers: passed", flush=True)
    except BaseException:
        for instance in everything:
            print(f"== {instance.name} log (tail) ==\n{instance.tail()}", file=sys.stderr)
        raise
    finally:
        for instance in everything:
            instance.stop()


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory(prefix="scaleout-") as work:
        journey(sys.argv[1], sys.argv[2], Path(work))


if __name__ == "__main__":
    main()
