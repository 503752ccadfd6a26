"""`make run` (scripts/run_local.py): it stops every process it started however it is
signalled, refuses a port in use before starting anything, moves every URL with PORT, and
keeps the portal serving when the emulator dies.

The tests run the real `make run` on free ports. Two run side by side on copies of one data
dir prepared once here, its tables built from the models and its migrations recorded as
applied, as the suite itself does (replaying dj-stripe's migrations costs ~50 s; CI checks
them). Every process `make run` starts inherits that data dir's path in its environment,
which is how the tests find every one of them, whatever its name or group.
"""

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from accounts.demo import DEMO_EMAIL, DEMO_PASSWORD
from licensing.verify import license_verify
from tests.test_configuration import read_by_settings

ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")
EMULATOR_KEY = "sk_test_" + "localemulator" + "0" * 16
START_TIMEOUT_SECONDS = 120
# make run's grace for stopping, and more: a clean stop must end within it.
STOP_TIMEOUT_SECONDS = 30

needs_make_and_proc = pytest.mark.skipif(
    MAKE is None or not Path("/proc/self/environ").exists(),
    reason="runs `make run` and inspects processes through Linux's /proc",
)

# Everything the settings read comes from the test instead of the caller's environment
# (CI's DATABASE_URL and broker, pytest-django's settings module).
SCRUBBED = read_by_settings() | {
    "DJANGO_SETTINGS_MODULE", "STRIPE_EMULATOR_PORT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
}  # fmt: skip

PREPARE_DATA_DIR = """
import django
from django.conf import settings

django.setup()
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder


class NoMigrations(dict):
    def __contains__(self, app_label):
        return True

    def __getitem__(self, app_label):
        return None


migration_modules = settings.MIGRATION_MODULES
settings.MIGRATION_MODULES = NoMigrations()
call_command("migrate", run_syncdb=True, verbosity=0)
settings.MIGRATION_MODULES = migration_modules
recorder = MigrationRecorder(connection)
recorder.ensure_schema()
with transaction.atomic():
    for app_label, name in MigrationLoader(connection).disk_migrations:
        recorder.record_applied(app_label, name)
"""


def environment(**values: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update({k: str(v) for k, v in values.items()})
    return env


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# --- Processes, from /proc --------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    started: int  # clock ticks after boot: a reused pid is another process
    cmdline: str


def process_table() -> dict[int, Process]:
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = Process(
            pid=int(entry.name),
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            state=fields[0],
            started=int(fields[19]),
            cmdline=cmdline.strip(),
        )
    return table


def descendants(root: int) -> dict[int, Process]:
    table = process_table()
    found = {root: table[root]} if root in table else {}
    grew = True
    while grew:
        more = {p.pid: p for p in table.values() if p.ppid in found and p.pid not in found}
        found |= more
        grew = bool(more)
    return found


def carrying(marker: bytes) -> set[int]:
    """The pids whose environment holds `marker` (NAME=value)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


# --- A running `make run` ---------------------------------------------------------------------


@dataclass
class Portal:
    make: subprocess.Popen
    data_dir: Path
    port: int
    emulator_port: int
    log: Path
    snapshot: dict[int, "Process"] | None = None  # what ran when it was signalled

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def marker(self) -> bytes:
        return f"DATA_DIR={self.data_dir}".encode()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.make.poll() is None, f"make run exited:\n{self.output()[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()[-3000:]}"
            time.sleep(0.1)

    def processes(self) -> dict[int, Process]:
        """Everything running under make now, checked to hold each of the four servers."""
        found = descendants(self.make.pid)
        for role in ("manage.py runserver", "-m stripe_emulator", "portal worker", "portal beat"):
            leaders = [p for p in found.values() if role in p.cmdline and p.pid == p.sid]
            assert leaders, f"no {role} leading its own session in {found}"
        return found

    def remaining(self, snapshot: dict[int, Process]) -> list[Process]:
        """Whatever is left of what `make run` started: the same processes (pid and start
        time), anything in their sessions, anything carrying the data dir in its
        environment (a process started after the snapshot)."""
        table = process_table()
        sessions = {p.sid for p in snapshot.values()}
        left = {
            p.pid
            for p in snapshot.values()
            if getattr(table.get(p.pid), "started", None) == p.started
        }
        left |= {p.pid for p in table.values() if p.sid in sessions}
        left |= carrying(self.marker) & table.keys()
        return [table[pid] for pid in sorted(left) if pid in table]

    def kill_everything(self) -> None:
        """Teardown after a failure: kill each group of what carries the data dir."""
        for pid in carrying(self.marker):
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
        self.make.kill()
        self.make.wait()

    def signed_in(self) -> requests.Session:
        session = requests.Session()
        session.get(f"{self.url}/accounts/login/", timeout=30)
        response = session.post(
            f"{self.url}/accounts/login/",
            data={
                "username": DEMO_EMAIL,
                "password": DEMO_PASSWORD,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302, response.text
        return session

    def post(self, session: requests.Session, path: str) -> requests.Response:
        return session.post(
            self.url + path,
            data={"csrfmiddlewaretoken": session.cookies["csrftoken"], "attempt": uuid.uuid4().hex},
            allow_redirects=False,
            timeout=60,
        )

    def emulator_get(self, path: str) -> dict:
        response = requests.get(self.emulator_url + path, auth=(EMULATOR_KEY, ""), timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def checkout_session(self, response: requests.Response) -> dict:
        """The Checkout Session a redirect to the emulator's hosted page is for."""
        assert response.status_code == 302, response.text
        location = urlsplit(response.headers["Location"])
        assert f"{location.scheme}://{location.netloc}" == self.emulator_url
        return self.emulator_get("/v1/checkout/sessions/" + location.path.rsplit("/", 1)[1])


def make_run(data_dir: Path, log: Path, port: int, emulator_port: int) -> subprocess.Popen:
    """`make run` in a session of its own, as a terminal would run it (Ctrl-C signals the
    whole foreground group). `-o` keeps make from reinstalling the shared virtualenv."""
    env = environment(DATA_DIR=data_dir, PORT=port, STRIPE_EMULATOR_PORT=emulator_port)
    with log.open("wb") as output:
        return subprocess.Popen(
            [MAKE, "--no-print-directory", "-o", ".venv/.installed", "run"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture(scope="module")
def prepared_data_dir(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("run-local-template")
    subprocess.run(
        [sys.executable, "-c", PREPARE_DATA_DIR],
        cwd=ROOT,
        env=environment(DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="billing_portal.settings.base"),
        check=True,
        timeout=120,
    )
    return data_dir


@pytest.fixture(scope="module")
def portals(prepared_data_dir, tmp_path_factory) -> Iterator[dict[str, Portal]]:
    """Two `make run`s started at once (the machine's cores overlap their starts). The
    first gets one SIGTERM as soon as it is up: the Celery worker's clean stop takes
    seconds, which pass while the tests use the second, and its test checks the outcome."""
    started = {}
    try:
        for name in ("single-sigterm", "sigint-and-sigterm"):
            base = tmp_path_factory.mktemp(name)
            data_dir = base / "data"
            shutil.copytree(prepared_data_dir, data_dir)
            port, emulator_port = free_ports(2)
            log = base / "make-run.log"
            started[name] = Portal(
                make_run(data_dir, log, port, emulator_port), data_dir, port, emulator_port, log
            )
        for portal in started.values():
            portal.wait_for_output("Press Ctrl-C to stop.")
        sigtermed = started["single-sigterm"]
        sigtermed.snapshot = sigtermed.processes()
        os.kill(sigtermed.make.pid, signal.SIGTERM)  # to make, as `kill PID` does; it passes it on
        yield started
    finally:
        for portal in started.values():
            if portal.make.poll() is None or carrying(portal.marker):
                portal.kill_everything()


# --- What a running `make run` serves --------------------------------------------------------


@needs_make_and_proc
def test_port_moves_the_webhook_endpoint_checkout_return_urls_and_license_issuer(portals):
    portal = portals["sigint-and-sigterm"]

    endpoints = portal.emulator_get("/v1/webhook_endpoints")["data"]
    assert [e["url"].startswith(f"{portal.url}/stripe/webhook/") for e in endpoints] == [True]

    session = portal.signed_in()
    card = portal.checkout_session(portal.post(session, "/billing/payment-methods/add/"))
    assert card["success_url"].startswith(f"{portal.url}/billing/payment-methods/added/?")
    assert card["cancel_url"] == f"{portal.url}/billing/payment-methods/cancelled/"
    plan = portal.checkout_session(portal.post(session, "/billing/plans/starter/upgrade/"))
    assert plan["success_url"].startswith(f"{portal.url}/billing/plans/activated/?")
    assert plan["cancel_url"] == f"{portal.url}/billing/plans/"

    token = session.get(f"{portal.url}/license/download/", timeout=30).text
    jwks = session.get(f"{portal.url}/.well-known/jwks.json", timeout=30).json()
    assert license_verify(token, jwks, issuer=portal.url)["iss"] == portal.url


def emulator_refuses(portal: Portal) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(f"{portal.emulator_url}/_emulator/health", timeout=5)
        except requests.ConnectionError:
            return True
        time.sleep(0.05)
    return False


@needs_make_and_proc
def test_the_portal_serves_on_while_the_emulator_is_down_and_make_run_restarts_it(portals):
    portal = portals["sigint-and-sigterm"]
    running = portal.processes()
    [supervisor] = [p for p in running.values() if "scripts/run_local.py" in p.cmdline]
    [emulator] = [p for p in running.values() if "-m stripe_emulator" in p.cmdline]
    session = portal.signed_in()

    # The supervisor is held still, so the emulator stays down while the portal is asked.
    os.kill(supervisor.pid, signal.SIGSTOP)
    try:
        os.kill(emulator.pid, signal.SIGKILL)
        assert emulator_refuses(portal), "the emulator still answers"
        assert requests.get(f"{portal.url}/healthz", timeout=30).status_code == 200
        response = portal.post(session, "/billing/payment-methods/add/")
        assert response.status_code == 302
        assert response.headers["Location"] == "/billing/payment-methods/"
        page = session.get(portal.url + response.headers["Location"], timeout=30)
        assert page.status_code == 200
        assert "Our payment provider is not responding right now." in page.text
    finally:
        os.kill(supervisor.pid, signal.SIGCONT)

    portal.wait_for_output("The Stripe emulator exited", timeout=10)
    portal.wait_for_output(f"The Stripe emulator is back at {portal.emulator_url}.", timeout=60)
    card = portal.checkout_session(portal.post(session, "/billing/payment-methods/add/"))
    assert card["mode"] == "setup"


# --- Stopping ---------------------------------------------------------------------------------


def assert_stops_completely(portal: Portal, snapshot: dict[int, Process]) -> None:
    portal.make.wait(timeout=STOP_TIMEOUT_SECONDS)
    left = portal.remaining(snapshot)
    assert left == [], f"left running: {left}\n{portal.output()[-3000:]}"


@needs_make_and_proc
def test_ctrl_c_then_sigterm_stops_every_process_make_run_started(portals):
    portal = portals["sigint-and-sigterm"]
    snapshot = portal.processes()

    os.killpg(portal.make.pid, signal.SIGINT)  # Ctrl-C: the terminal signals make's group
    portal.wait_for_output("Stopping", timeout=10)
    os.kill(portal.make.pid, signal.SIGTERM)  # while the worker is still stopping

    assert_stops_completely(portal, snapshot)
    assert "Killing what is left." in portal.output()


STUBBORN = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.fork()  # parent and child both ignore SIGTERM
time.sleep(60)
"""
LEAVES_A_CHILD = """
import os, signal, time
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(60)  # the parent stops on SIGTERM; its child stays in the group
"""


def run_local_module():
    spec = importlib.util.spec_from_file_location("run_local", ROOT / "scripts" / "run_local.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_make_and_proc
def test_stopping_kills_what_outlives_the_grace_whole_groups_included(monkeypatch, capsys):
    run_local = run_local_module()
    monkeypatch.setattr(run_local, "GRACE_SECONDS", 0.5)
    supervisor = run_local.Supervisor()
    groups = [
        supervisor.start(name, [sys.executable, "-c", code]).pid
        for name, code in [("stubborn", STUBBORN), ("leaves-a-child", LEAVES_A_CHILD)]
    ]
    deadline = time.monotonic() + 30
    while sum(p.pgid in groups for p in process_table().values()) < 4:
        assert time.monotonic() < deadline, "the test's processes did not fork"
        time.sleep(0.05)

    started = time.monotonic()
    try:
        supervisor.stop_all()
        assert time.monotonic() - started < 5
        assert [p for p in process_table().values() if p.pgid in groups] == []
    finally:
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
    assert "Killing what did not stop in time: stubborn, leaves-a-child." in capsys.readouterr().out


# --- Ports ------------------------------------------------------------------------------------


@needs_make_and_proc
@pytest.mark.parametrize("taken", ["PORT", "STRIPE_EMULATOR_PORT"])
def test_a_port_in_use_stops_make_run_before_anything_starts(tmp_path, taken):
    ports = dict(zip(["PORT", "STRIPE_EMULATOR_PORT"], free_ports(2), strict=True))
    data_dir = tmp_path / "data"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports[taken]))
        holder.listen()
        result = subprocess.run(
            [MAKE, "--no-print-directory", "-o", ".venv/.installed", "run"],
            cwd=ROOT,
            env=environment(DATA_DIR=data_dir, **ports),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode != 0
    assert f"Port {ports[taken]} on 127.0.0.1 ({taken}," in result.stderr
    assert f"set {taken} to a free port, e.g. `{taken}=" in result.stderr
    assert not data_dir.exists(), "something started: the data dir was written"
    assert carrying(f"DATA_DIR={data_dir}".encode()) == set()


# --- PORT moves every URL ---------------------------------------------------------------------


def settings_base_url(tmp_path: Path, **env: str) -> list[str]:
    code = (
        "from billing_portal.settings import base; "
        "print(base.PORTAL_BASE_URL); print(*base.CSRF_TRUSTED_ORIGINS)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment(DATA_DIR=tmp_path, **env),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"PORT": "8100"}, "http://127.0.0.1:8100"),
        ({"PORT": "8100", "PORTAL_BASE_URL": ""}, "http://127.0.0.1:8100"),
        (
            {"PORT": "8100", "PORTAL_BASE_URL": "https://billing.example.com/"},
            "https://billing.example.com",
        ),
    ],
)
def test_portal_base_url_follows_port_unless_set(tmp_path, env, expected):
    assert settings_base_url(tmp_path, **env) == [expected, expected]


# Last: the fixture's SIGTERM has had every test above to take effect.
@needs_make_and_proc
def test_one_sigterm_stops_every_process_make_run_started(portals):
    portal = portals["single-sigterm"]  # the fixture sent the SIGTERM as soon as it was up
    assert portal.snapshot is not None

    assert_stops_completely(portal, portal.snapshot)
    assert "Stopping" in portal.output()
