"""check-access over HTTP beside a no-op view of the same server, as production serves it:
production settings, PostgreSQL, 10,000 customers with 5 features each, `wrk` as the
client; each server shape, with and without its access log. Also the webhook receipt
throughput over HTTP. Builds a throwaway database and stops everything it starts.

    python bench/http_compare.py [--server default|all|NAME[,NAME…]] [--seconds 10]
        [--rounds 5] [--connections 4,16] [--access-log on|off|both] [--customers 10000]
        [--database socket|tcp|both]

PostgreSQL: the server of DATABASE_URL if set (a new database beside the named one,
dropped at the end), else a private one started from Debian's binaries in a temporary
directory (as user postgres when run as root), which the server reaches over its Unix
socket and over loopback TCP in turn (--database). wrk is installed with apt-get when missing
and run as root. CELERY_BROKER_URL and CACHE_URL, if set, reach the server (else the file
broker and a per-process cache). Figures are noisy on a shared machine: runs alternate
between the two endpoints, and each figure is the median of --rounds runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import glob
import http.client
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CORES = os.cpu_count() or 2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The machine the shapes and the Dockerfile are sized for.
TARGET_CORES = 2
BENCH_PLAN = "bench"
# The metered feature check-access is asked about, and the usage each customer has.
FEATURE = "api_calls"
USED = 500


@dataclasses.dataclass(frozen=True)
class Server:
    name: str
    description: str
    command: list[str]
    log_on: list[str]
    log_off: list[str]

    @property
    def workers(self) -> int:
        return int(self.command[self.command.index("--workers") + 1])


def servers(port: int) -> dict[str, Server]:
    """The shapes compared, with worker counts for TARGET_CORES cores (the names say them)."""
    bind = f"{HOST}:{port}"
    gunicorn = [sys.executable, "-m", "gunicorn", "billing_portal.wsgi", "--bind", bind]
    granian = [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", HOST,
               "--port", str(port), "--respawn-failed-workers",
               "billing_portal.wsgi:application"]  # fmt: skip
    # gunicorn's access log goes to stdout, which is a file here (as a container's log).
    g_on, g_off = ["--access-logfile", "-"], []
    r_on, r_off = ["--access-log"], ["--no-access-log"]
    sync_workers = 2 * TARGET_CORES + 1
    shapes = [
        Server(
            "gunicorn-sync",
            f"gunicorn sync, {sync_workers} workers",
            [*gunicorn, "--worker-class", "sync", "--workers", str(sync_workers)],
            g_on,
            g_off,
        ),
        Server(
            "gunicorn-gthread-2x4",
            f"gunicorn gthread, {TARGET_CORES} workers x 4 threads",
            [
                *gunicorn,
                "--worker-class",
                "gthread",
                "--workers",
                str(TARGET_CORES),
                "--threads",
                "4",
            ],
            g_on,
            g_off,
        ),
        Server(
            "gunicorn-gthread-4x2",
            f"gunicorn gthread, {2 * TARGET_CORES} workers x 2 threads",
            [
                *gunicorn,
                "--worker-class",
                "gthread",
                "--workers",
                str(2 * TARGET_CORES),
                "--threads",
                "2",
            ],
            g_on,
            g_off,
        ),
        Server(
            "granian-2x1",
            f"granian WSGI, {TARGET_CORES} workers x 1 blocking thread",
            [*granian, "--workers", str(TARGET_CORES), "--blocking-threads", "1"],
            r_on,
            r_off,
        ),
        Server(
            "granian-2x2",
            f"granian WSGI, {TARGET_CORES} workers x 2 blocking threads",
            [*granian, "--workers", str(TARGET_CORES), "--blocking-threads", "2"],
            r_on,
            r_off,
        ),
        Server(
            "granian-4x1",
            f"granian WSGI, {2 * TARGET_CORES} workers x 1 blocking thread",
            [*granian, "--workers", str(2 * TARGET_CORES), "--blocking-threads", "1"],
            r_on,
            r_off,
        ),
        Server(
            "granian-2x4",
            f"granian WSGI, {TARGET_CORES} workers x 4 blocking threads",
            [*granian, "--workers", str(TARGET_CORES), "--blocking-threads", "4"],
            r_on,
            r_off,
        ),
    ]
    return {server.name: server for server in shapes}


# A run in which one server process did this share of the server's work or more had every
# connection on one worker: wrk's keep-alive connections stay where the kernel placed them,
# so a 2-worker server then serves the run on one core. That measures the kernel's placing
# of 4 connections rather than the endpoint, and befalls either endpoint (seen: up to two
# fifths of the 4-connection runs); such a run is printed and measured again, at most
# LOPSIDED_RETRIES times (the last one counts, whatever its placing).
LOPSIDED = 0.9
LOPSIDED_RETRIES = 3


# What the Dockerfile and docker-compose.yml run (the suite checks they agree); `make bench`
# measures it. 2 x 4 rather than 2 x 1, which used about as much CPU: with one thread a
# page waiting on Stripe (up to STRIPE_READ_TIMEOUT) would hold a whole worker.
DEFAULT_SERVER = "granian-2x4"


# --- PostgreSQL ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return Path(found[-1]) if found else None


class PrivatePostgres:
    """A throwaway PostgreSQL on loopback, its files in `work`."""

    def __init__(self, work: Path) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise SystemExit(
                "No DATABASE_URL and no PostgreSQL binaries (apt-get install postgresql)"
            )
        self.bindir, self.pgdata, self.port = bindir, work / "pgdata", free_port()
        self.pgdata.mkdir()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if os.getuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(work, "postgres")
            shutil.chown(self.pgdata, "postgres")
        self._run("initdb", "-D", self.pgdata, "-U", "postgres", "-A", "trust", "--no-sync")
        options = (
            f"-p {self.port} -k {self.pgdata} -c listen_addresses={HOST} -c fsync=off "
            "-c synchronous_commit=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", self.pgdata, "-l", work / "postgres.log", "-w", "-o", options, "start"
        )
        self.url = f"postgres://postgres@{HOST}:{self.port}"
        # Its Unix socket (in pgdata, as -k says), written as libpq and DATABASE_URL take it.
        socket_dir = urllib.parse.quote(str(self.pgdata), safe="")
        self.socket_url = f"postgres://postgres@{socket_dir}:{self.port}"

    def _run(self, tool: str, *args) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bindir / tool), *map(str, args)],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.pgdata, "-m", "immediate", "stop")


def database_create(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- The data -----------------------------------------------------------------------------------


def django_setup(schema: str) -> None:
    """This process uses the production settings too (DATABASE_URL etc. already set)."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if schema == "models":
        # Tables straight from the models: seconds instead of the minutes dj-stripe's
        # migrations take. For the suite's tiny run; the full bench migrates.
        settings.MIGRATION_MODULES = {
            app.rsplit(".", 1)[-1]: None for app in settings.INSTALLED_APPS
        }
        call_command("migrate", run_syncdb=True, verbosity=0)
    else:
        call_command("migrate", verbosity=0, interactive=False)


def seed(customers: int) -> tuple[list[str], str, str, str]:
    """The catalog plus a plan of 5 features, `customers` customers on it (active, USED
    units of FEATURE this period), a service key and a webhook endpoint; bulk inserts.
    Returns (customer ids, service key, webhook URL path, webhook secret)."""
    from django.db import transaction
    from django.utils import timezone
    from djstripe.models import WebhookEndpoint

    from accounts.models import Customer, new_customer_id
    from licensing.api.authentication import service_key_create
    from licensing.catalog import catalog_read
    from licensing.models import CustomerPlan, Feature, Plan, PlanFeature, UsageEvent, UsageTotal
    from licensing.services import catalog_load

    catalog_load(catalog=catalog_read())
    now = timezone.now()
    start, end = now - timedelta(days=1), now + timedelta(days=29)
    with transaction.atomic():
        exports = Feature.objects.create(key="bench_exports", name="Exports", kind="metered")
        plan = Plan.objects.create(code=BENCH_PLAN, name="Bench")
        features = {f.key: f for f in Feature.objects.filter(is_active=True)}
        PlanFeature.objects.bulk_create(
            [
                PlanFeature(
                    plan=plan,
                    feature=features[FEATURE],
                    limit=1_000_000,
                    reset="monthly",
                    soft_limit=800_000,
                ),
                PlanFeature(plan=plan, feature=features["projects"], limit=50, reset="never"),
                PlanFeature(plan=plan, feature=features["sso"]),
                PlanFeature(plan=plan, feature=features["priority_support"]),
                PlanFeature(plan=plan, feature=exports, limit=10_000, reset="monthly"),
            ]
        )
        ids = [new_customer_id() for _ in range(customers)]
        batch = 2000
        Customer.objects.bulk_create(
            [Customer(customer_id=i, trial_ends_at=start) for i in ids], batch_size=batch
        )
        CustomerPlan.objects.bulk_create(
            [
                CustomerPlan(
                    customer_id=i,
                    plan=plan,
                    status="active",
                    current_period_start=start,
                    current_period_end=end,
                    subscription_id=f"sub_{i[5:29]}",
                )
                for i in ids
            ],
            batch_size=batch,
        )
        UsageEvent.objects.bulk_create(
            [
                UsageEvent(
                    customer_id=i,
                    feature=features[FEATURE],
                    quantity=USED,
                    idempotency_key=f"bench-{i}",
                    occurred_at=now,
                    period_start=start,
                )
                for i in ids
            ],
            batch_size=batch,
        )
        UsageTotal.objects.bulk_create(
            [
                UsageTotal(customer_id=i, feature=features[FEATURE], period_start=start, used=USED)
                for i in ids
            ],
            batch_size=batch,
        )
    _record, key = service_key_create(name="bench")
    secret = "whsec_" + secrets.token_hex(16)
    endpoint = WebhookEndpoint.objects.create(
        id="we_bench",
        livemode=False,
        secret=secret,
        url="http://127.0.0.1/bench",
        api_version="",
        enabled_events=["*"],
        status="enabled",
    )
    return ids, key, f"/stripe/webhook/{endpoint.djstripe_uuid}/", secret


# --- CPU ----------------------------------------------------------------------------------------


def cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = {pid}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


class CPUMeter:
    """CPU time of the server's processes and of the benchmark database's PostgreSQL
    backends (readable when the database server runs on this machine)."""

    def __init__(self, server_pid: int, database_url: str) -> None:
        import psycopg

        self.server_pid = server_pid
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.database = self.conn.info.dbname

    def backends(self) -> set[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.database],
        ).fetchall()
        return {row[0] for row in rows}

    def snapshot(self) -> tuple[dict[int, int], dict[int, int]]:
        def read(pids):
            return {pid: t for pid in pids if (t := cpu_ticks(pid)) is not None}

        return read(descendants(self.server_pid)), read(self.backends())

    @staticmethod
    def spent(before: dict[int, int], after: dict[int, int]) -> float:
        """Seconds; a process that started in between counts from zero."""
        return sum(t - before.get(pid, 0) for pid, t in after.items()) / CLOCK_TICKS

    def close(self) -> None:
        self.conn.close()


# --- wrk ----------------------------------------------------------------------------------------


def wrk_ensure() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.getuid() != 0:
        raise SystemExit("wrk is missing: apt-get install wrk (needs root)")
    print("installing wrk from Debian's packages", flush=True)
    apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]  # from PATH, as .ci/run does
    if subprocess.run(install, env=apt, capture_output=True, check=False).returncode != 0:
        update = ["apt-get", "update", "-qq"]
        subprocess.run(update, env=apt, capture_output=True, check=True)
        subprocess.run(install, env=apt, capture_output=True, check=True)
    return shutil.which("wrk") or sys.exit("wrk did not install")


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua one for ASCII text


def check_access_script(path: Path, key: str, customer_ids: list[str]) -> None:
    """POST check-access with a JSON body and the Bearer key, cycling through customers
    (requests formatted once, in init, so wrk's own CPU stays small)."""
    bodies = ",\n".join(
        lua_string(json.dumps({"customer_id": c, "feature": FEATURE, "requested_usage": 1}))
        for c in customer_ids
    )
    path.write_text(f"""
local bodies = {{
{bodies}
}}
local requests, n = {{}}, 0
function init(args)
  local headers = {{["Content-Type"] = "application/json",
                   ["Authorization"] = "Bearer " .. {lua_string(key)}}}
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "/api/v1/check-access", headers, body)
  end
end
function request()
  n = n % #requests + 1
  return requests[n]
end
""")


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * UNITS[unit]


@dataclasses.dataclass
class Run:
    requests: int
    seconds: float
    rps: float
    p50: float
    p99: float
    bad: int
    server_cpu: float = 0.0
    db_cpu: float = 0.0
    client_cpu: float = 0.0
    # Shares of the machine's CPU time during the run (all cores): idle, and taken by the
    # hypervisor for other guests (steal), which slows a run without showing in its CPU.
    idle: float = 0.0
    stolen: float = 0.0
    # The busiest server process's share of the server's CPU: with 2 workers, about a half
    # when the kernel spread wrk's keep-alive connections evenly, all of it when it gave
    # every one to the same worker (which then runs on one core under its GIL).
    busiest: float = 0.0


def wrk_parse(output: str) -> Run:
    def number(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output)
        if match is None and default is None:
            raise RuntimeError(f"unexpected wrk output:\n{output}")
        return match.group(1) if match else default

    bad = int(number(r"Non-2xx or 3xx responses: (\d+)", "0"))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        bad += sum(int(g) for g in errors.groups())
    requests, seconds = re.search(r"(\d+) requests in ([\d.]+\w+)", output).groups()
    return Run(
        requests=int(requests),
        seconds=milliseconds(seconds) / 1e3,
        rps=float(number(r"Requests/sec:\s+([\d.]+)")),
        p50=milliseconds(number(r"\s50%\s+([\d.]+\w+)")),
        p99=milliseconds(number(r"\s99%\s+([\d.]+\w+)")),
        bad=bad,
    )


def wrk_run(wrk: str, url: str, connections: int, seconds: int, script: Path | None) -> Run:
    command = [
        wrk,
        "--latency",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
    ]
    if script:
        command += ["-s", str(script)]
    result = subprocess.run(
        [*command, url], capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stderr or result.stdout}")
    return wrk_parse(result.stdout)


# --- The server under test ----------------------------------------------------------------------


class Running:
    def __init__(self, server: Server, access_log: bool, env: dict, log: Path) -> None:
        command = server.command + (server.log_on if access_log else server.log_off)
        self.log = log
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, base_url: str) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/bench/noop", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise RuntimeError(f"server not ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def children_cpu() -> float:
    """CPU seconds of this process's finished children: wrk, once a run has ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_cpu() -> list[int]:
    """The machine's CPU time so far, in ticks, as /proc/stat's first line counts it: user,
    nice, system, idle, iowait, irq, softirq, steal, …"""
    return [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def measured(meter: CPUMeter, function, *args) -> Run:
    server_before, db_before = meter.snapshot()
    client_before = children_cpu()
    machine_before = machine_cpu()
    result = function(*args)
    machine = [after - before for before, after in zip(machine_before, machine_cpu(), strict=True)]
    server_after, db_after = meter.snapshot()
    result.server_cpu = meter.spent(server_before, server_after)
    by_process = [t - server_before.get(pid, 0) for pid, t in server_after.items()]
    result.busiest = max(by_process, default=0) / (sum(by_process) or 1)
    result.db_cpu = meter.spent(db_before, db_after)
    result.client_cpu = children_cpu() - client_before
    total = sum(machine[:8]) or 1  # guest time is counted in user time too
    result.idle, result.stolen = (machine[3] + machine[4]) / total, machine[7] / total
    return result


def summary(runs: list[Run]) -> dict:
    requests = sum(r.requests for r in runs) or 1
    return {
        "rps": statistics.median(r.rps for r in runs),
        "rps_range": (min(r.rps for r in runs), max(r.rps for r in runs)),
        "p50": statistics.median(r.p50 for r in runs),
        "p99": statistics.median(r.p99 for r in runs),
        "server_cpu_ms": 1e3 * sum(r.server_cpu for r in runs) / requests,
        "db_cpu_ms": 1e3 * sum(r.db_cpu for r in runs) / requests,
        "client_cpu_ms": 1e3 * sum(r.client_cpu for r in runs) / requests,
        "idle": statistics.mean(r.idle for r in runs),
        "stolen": statistics.mean(r.stolen for r in runs),
        "busiest": [r.busiest for r in runs],
        "bad": sum(r.bad for r in runs),
        "requests": requests,
    }


def webhook_receipt(port: int, url_path: str, secret: str, events: int, connections: int) -> Run:
    """`events` distinct signed deliveries, each once, over `connections` keep-alive
    connections (a Python client: wrk cannot send each request once): verify, store, queue."""
    from stripe_emulator.webhooks import sign

    stamp = int(time.time())
    deliveries = []
    for i in range(events):
        body = json.dumps(
            {
                "id": f"evt_bench{secrets.token_hex(8)}{i}",
                "object": "event",
                "type": "customer.updated",
                "created": stamp,
                "livemode": False,
                "api_version": "2026-08-26.dahlia",
                "pending_webhooks": 1,
                "data": {"object": {"id": f"cus_bench{i}", "object": "customer"}},
            }
        ).encode()
        deliveries.append((body, sign(body, secret, stamp)))
    latencies: list[float] = []
    bad = [0]

    def send(share: list[tuple[bytes, str]]) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        for body, signature in share:
            began = time.perf_counter()
            connection.request(
                "POST",
                url_path,
                body=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            )
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - began)
            bad[0] += response.status != 200
        connection.close()

    threads = [
        threading.Thread(target=send, args=(deliveries[i::connections],))
        for i in range(connections)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies) or [0.0]
    return Run(
        requests=len(latencies),
        seconds=elapsed,
        rps=len(latencies) / elapsed,
        p50=ordered[len(ordered) // 2] * 1e3,
        p99=ordered[int(len(ordered) * 0.99)] * 1e3,
        bad=bad[0],
    )


def spread_run(measure, workers: int) -> tuple[Run, list[Run]]:
    """A run of `measure()`, and the runs before it that had every connection on one worker
    (measured again, at most LOPSIDED_RETRIES times; the last run counts as it is)."""
    repeated = []
    run = measure()
    while workers > 1 and run.busiest >= LOPSIDED and len(repeated) < LOPSIDED_RETRIES:
        repeated.append(run)
        run = measure()
    return run, repeated


def compare(server: Server, access_log: bool, transport: str, args, context: dict) -> dict:
    port = context["port"]
    base_url = f"http://{HOST}:{port}"
    database_url = context["database_urls"][transport]
    label = f"{server.name} (access log {'on' if access_log else 'off'}, PostgreSQL {transport})"
    log = context["work"] / f"{server.name}-{'log' if access_log else 'nolog'}-{transport}.txt"
    print(f"\n== {label}: {server.description} ==", flush=True)
    running = Running(server, access_log, {**context["env"], "DATABASE_URL": database_url}, log)
    results: dict = {}
    try:
        running.wait_ready(base_url)
        meter = CPUMeter(running.process.pid, database_url)
        endpoints = {
            "no-op": (f"{base_url}/bench/noop", None),
            "check-access": (f"{base_url}/api/v1/check-access", context["script"]),
        }
        try:
            for connections in args.connections:
                for url, script in endpoints.values() if args.warmup else ():
                    wrk_run(context["wrk"], url, connections, args.warmup, script)  # warm up
                runs: dict[str, list[Run]] = {name: [] for name in endpoints}
                lopsided: dict[str, list[Run]] = {name: [] for name in endpoints}
                for round_ in range(args.rounds):
                    # Alternate, and swap the order every round, so drift hits both alike.
                    order = list(endpoints) if round_ % 2 == 0 else list(endpoints)[::-1]
                    for name in order:
                        url, script = endpoints[name]
                        measure = functools.partial(
                            measured, meter, wrk_run, context["wrk"], url, connections,
                            args.seconds, script,
                        )  # fmt: skip
                        run, repeated = spread_run(measure, server.workers)
                        runs[name].append(run)
                        lopsided[name] += repeated
                row = {name: summary(r) for name, r in runs.items()}
                # Each round's two runs are neighbours in time: their ratio is less moved by
                # the machine's drift than the ratio of the medians.
                row["round ratios"] = [
                    check.rps / noop.rps
                    for noop, check in zip(runs["no-op"], runs["check-access"], strict=True)
                ]
                row["lopsided"] = lopsided
                results[connections] = row
                report(connections, row)
            if args.events:
                path, secret = context["webhook_path"], context["webhook_secret"]
                connections = min(args.connections)
                run = measured(meter, webhook_receipt, port, path, secret, args.events, connections)
                results["webhooks"] = run
                print(
                    f"  webhook receipt over HTTP (verify + store + queue), "
                    f"{connections} connections: {run.rps:6.0f} events/s, {run.requests} events, "
                    f"{run.bad} not 200, p50 {run.p50:.2f} ms, p99 {run.p99:.2f} ms, "
                    f"CPU {1e3 * run.server_cpu / max(run.requests, 1):.2f} ms server + "
                    f"{1e3 * run.db_cpu / max(run.requests, 1):.2f} ms PostgreSQL per event"
                )
        finally:
            meter.close()
    finally:
        running.stop()
    if access_log:
        lines = sum(1 for _ in log.open("rb"))
        print(f"  access log: {lines} lines, {log.stat().st_size / 1e6:.1f} MB written")
    return results


ENDPOINTS = ("no-op", "check-access")


def report(connections: int, row: dict) -> None:
    for name in ENDPOINTS:
        s = row[name]
        low, high = s["rps_range"]
        print(
            f"  {connections:2} conn  {name:12} {s['rps']:7.0f} req/s  (runs {low:.0f}-{high:.0f})"
            f"  p50 {s['p50']:6.2f} ms  p99 {s['p99']:6.2f} ms  CPU/request "
            f"{s['server_cpu_ms']:.2f} ms server + {s['db_cpu_ms']:.2f} ms PostgreSQL"
            f" (wrk {s['client_cpu_ms']:.2f} ms)"
            f"  ({s['requests']} requests, {s['bad']} non-2xx/errors)"
            f"  machine: {100 * s['idle']:.0f}% idle, {100 * s['stolen']:.0f}% stolen; busiest "
            f"worker's share of the server's CPU, run by run: "
            f"{' '.join(f'{100 * b:.0f}%' for b in s['busiest'])}"
        )
    for name, repeated in row["lopsided"].items():
        if repeated:
            print(
                f"  {connections:2} conn  {name}: {len(repeated)} run(s) with every connection on "
                f"one worker, measured again: "
                f"{', '.join(f'{r.rps:.0f} req/s ({100 * r.busiest:.0f}%)' for r in repeated)}"
            )
    noop, check = row["no-op"], row["check-access"]
    ratios = row["round ratios"]
    print(
        f"  {connections:2} conn  check-access / no-op: requests/s {check['rps'] / noop['rps']:.2f}"
        f" (medians; round by round {statistics.median(ratios):.2f}, the median of "
        f"{' '.join(f'{r:.2f}' for r in ratios)}), p99 {check['p99'] / noop['p99']:.2f}",
        flush=True,
    )


def table(all_results: dict) -> None:
    print(
        "\n== Summary: median requests/s, p50 / p99 ms, CPU ms per request (server + PostgreSQL); "
        "ratio: of the medians, and the median of each round's; CPU stolen by the hypervisor "
        "(no-op / check-access runs) =="
    )
    print(
        "| server | access log | PostgreSQL | conn | no-op req/s | no-op p50/p99 | no-op CPU | "
        "check-access req/s | check-access p50/p99 | check-access CPU | ratio | "
        "round by round | stolen |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, access_log, transport), results in all_results.items():
        for connections, row in results.items():
            if connections == "webhooks":
                continue
            n, c = row["no-op"], row["check-access"]
            print(
                f"| {name} | {'on' if access_log else 'off'} | {transport} | {connections} "
                f"| {n['rps']:.0f} | {n['p50']:.2f} / {n['p99']:.1f} "
                f"| {n['server_cpu_ms']:.2f} + {n['db_cpu_ms']:.2f} "
                f"| {c['rps']:.0f} | {c['p50']:.2f} / {c['p99']:.1f} "
                f"| {c['server_cpu_ms']:.2f} + {c['db_cpu_ms']:.2f} | {c['rps'] / n['rps']:.2f} "
                f"| {statistics.median(row['round ratios']):.2f} "
                f"| {100 * n['stolen']:.0f}% / {100 * c['stolen']:.0f}% |"
            )
    for (name, access_log, transport), results in all_results.items():
        if "webhooks" in results:
            run = results["webhooks"]
            print(
                f"webhook receipt, {name}, access log {'on' if access_log else 'off'}, "
                f"PostgreSQL {transport}: "
                f"{run.rps:.0f} events/s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = list(servers(0))
    parser.add_argument(
        "--server",
        default="default",
        help=f"default ({DEFAULT_SERVER}), all, or a comma-separated list of: {', '.join(names)}",
    )
    parser.add_argument("--seconds", type=int, default=10, help="each measured run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="runs of each endpoint (alternating; the median is reported)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each level; 0: none")
    parser.add_argument(
        "--connections", default="4,16", type=lambda v: [int(c) for c in v.split(",")]
    )
    parser.add_argument("--access-log", choices=["on", "off", "both"], default="on")
    parser.add_argument(
        "--database",
        choices=["socket", "tcp", "both"],
        default="both",
        help="how the server reaches the private PostgreSQL: its Unix socket (as a portal "
        "on the database's host would), loopback TCP, or each in turn; a DATABASE_URL is "
        "used as given",
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=2000, help="webhook deliveries; 0: none")
    parser.add_argument(
        "--schema",
        choices=["migrate", "models"],
        default="migrate",
        help="migrate (as production), or tables straight from the models "
        "(fast; for the suite's tiny run)",
    )
    args = parser.parse_args()
    chosen = {"default": [DEFAULT_SERVER], "all": names}.get(args.server, args.server.split(","))
    unknown = set(chosen) - set(names)
    if unknown:
        parser.error(f"unknown server {', '.join(sorted(unknown))}; choose from {', '.join(names)}")
    logs = {"on": [True], "off": [False], "both": [True, False]}[args.access_log]

    wrk = wrk_ensure()
    work = Path(tempfile.mkdtemp(prefix="bp-http-bench-"))
    private = None
    given = os.environ.get("DATABASE_URL", "")
    if given:
        parts = urllib.parse.urlsplit(given)
        server_url = f"{parts.scheme}://{parts.netloc}"
        database = f"{parts.path.strip('/') or 'bp'}_httpbench_{os.getpid()}"
        socket = parts.netloc.rsplit("@", 1)[-1].lower().startswith("%2f")
        server_urls = {"over its Unix socket" if socket else "over TCP": server_url}
    else:
        private = PrivatePostgres(work)
        server_url, database = private.url, "bench"
        ways = {"over its Unix socket": private.socket_url, "over TCP": private.url}
        wanted = {"socket": ["over its Unix socket"], "tcp": ["over TCP"]}.get(
            args.database, list(ways)
        )
        server_urls = {way: ways[way] for way in wanted}
    database_url = f"{server_url}/{database}"
    data_dir = work / "data"
    data_dir.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "billing_portal.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "BENCH_NOOP_VIEW": "true",
        # Appended: a test session's clock shift (TEST_CLOCK_OFFSET) is first on it.
        "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)])),
    }
    os.environ.update(env)
    try:
        database_create(server_url, database)
        started = time.monotonic()
        django_setup(args.schema)
        migrated = time.monotonic() - started
        customer_ids, key, webhook_path, webhook_secret = seed(args.customers)
        seeded = time.monotonic() - started - migrated
        script = work / "check_access.lua"
        check_access_script(script, key, customer_ids[:1000])
        print(
            f"machine: {CORES} cores, load average {os.getloadavg()[0]:.1f} (shared: figures "
            f"are noisy); {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        )
        print(
            f"database: PostgreSQL, {'private' if private else 'the server of DATABASE_URL'}, "
            f"reached {' and, in turn, '.join(server_urls)}, "
            f"schema by {args.schema} ({migrated:.0f} s); {args.customers} customers with 5 "
            f"features each, {USED} units of {FEATURE} used ({seeded:.1f} s)"
        )
        broker = os.environ.get("CELERY_BROKER_URL") or "the file broker in the data dir"
        cache = os.environ.get("CACHE_URL") or "per process"
        print(
            f"settings: production, DEBUG off, CONN_MAX_AGE {os.environ.get('CONN_MAX_AGE', 60)}, "
            f"Celery broker {broker}, cache {cache}; client: wrk, 1 thread, on the same "
            f"cores; {args.rounds} alternating runs of {args.seconds} s per endpoint, medians"
        )
        print(
            f"check-access: POST {FEATURE} (metered), requested_usage 1, cycling through "
            f"{min(1000, len(customer_ids))} customers; no-op: GET /bench/noop through "
            "the same middleware"
        )
        context = {
            "port": free_port(),
            "work": work,
            "env": env,
            "wrk": wrk,
            "script": script,
            "database_urls": {name: f"{url}/{database}" for name, url in server_urls.items()},
            "webhook_path": webhook_path,
            "webhook_secret": webhook_secret,
        }
        shapes = servers(context["port"])
        all_results = {}
        for name in chosen:
            for access_log in logs:
                for transport in server_urls:
                    all_results[(name, access_log, transport)] = compare(
                        shapes[name], access_log, transport, args, context
                    )
        table(all_results)
        print(
            "webhook processing (fetch from Stripe + mirror): not over HTTP here (it needs "
            "a worker and a Stripe); bench/portal_bench.py prints it, in-process"
        )
    finally:
        from django.db import connections

        connections.close_all()
        try:
            database_drop(server_url, database)
        finally:
            if private:
                private.stop()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
