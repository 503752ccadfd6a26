"""`make run`: the portal with everything it needs on one machine, until Ctrl-C.

Starts the local Stripe emulator (unless STRIPE_SECRET_KEY is set: then that Stripe is
used, and an empty value switches billing off), migrates, seeds the demo logins, registers
the webhook endpoint, and runs the web server, a Celery worker and beat side by side.

PORT (default 8000) and STRIPE_EMULATOR_PORT (default 12111) choose the ports; the settings
derive PORTAL_BASE_URL from PORT unless it is set, so webhooks, Checkout's return pages,
licenses and emails point where the portal serves. A port already in use stops this before
anything starts.

This script supervises what it starts. Each process runs in a session of its own, so its
whole group can be signalled without touching anyone else's. Ctrl-C, SIGTERM or SIGHUP asks
every process to stop and waits up to GRACE_SECONDS; then whatever is left of each group is
killed, and a further signal kills at once. If the emulator exits, the portal keeps serving
(its billing pages say the payment provider is not responding) and the emulator is started
again.

Run with the project's virtualenv python from the project root.
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import environ  # noqa: E402

from accounts.demo import DEMO_EMAIL, DEMO_PASSWORD, SUPPORT_EMAIL  # noqa: E402

PYTHON = sys.executable
HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_EMULATOR_PORT = 12111
# The emulator accepts any sk_test_ key; dj-stripe wants 24 letters or digits after it.
EMULATOR_KEY = "sk_test_" + "localemulator" + "0" * 16
EMULATOR = "stripe-emulator"
READY_TIMEOUT_SECONDS = 120
# How long the portal's processes have to stop after SIGTERM (a Celery worker finishes the
# task in hand), and then the emulator, before their process groups are killed.
GRACE_SECONDS = 10
EMULATOR_GRACE_SECONDS = 3
POLL_SECONDS = 0.1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# An emulator that exits within this long of starting failed to start: it is started again
# at once the first time, then after 1, 2, 4... s, and after this many is left stopped.
EMULATOR_STEADY_SECONDS = 30
EMULATOR_MAX_FAILURES = 5
PR_SET_PDEATHSIG = 1


def say(message: str, *, error: bool = False) -> None:
    # Never let a closed terminal or pipe interrupt stopping the processes.
    with contextlib.suppress(OSError):
        print(message, file=sys.stderr if error else sys.stdout, flush=True)


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Config:
    port: int
    emulator_port: int
    data_dir: Path
    use_emulator: bool

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def emulator_url(self) -> str:
        return f"http://{HOST}:{self.emulator_port}"


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "") or str(default)
    port = int(raw) if raw.isdigit() else 0
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name}={raw!r} is not a port number (1 to 65535).")
    return port


def config_read() -> Config:
    if (ROOT / ".env").is_file():  # the settings read it too; here it decides ports and Stripe
        environ.Env.read_env(ROOT / ".env")
    return Config(
        port=_port("PORT", DEFAULT_PORT),
        emulator_port=_port("STRIPE_EMULATOR_PORT", DEFAULT_EMULATOR_PORT),
        data_dir=Path(os.environ.get("DATA_DIR", "") or ROOT / "var"),
        use_emulator="STRIPE_SECRET_KEY" not in os.environ,
    )


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers bind: a port the last run left in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _free_port_after(port: int, taken: set[int]) -> int | None:
    for candidate in range(port + 1, min(port + 100, 65536)):
        if candidate not in taken and not port_in_use(candidate):
            return candidate
    return None


def ports_check(config: Config) -> list[str]:
    """What stops the start: each wanted port that is taken, with the variable to set."""
    wanted = [("PORT", config.port, "the portal")]
    if config.use_emulator:
        wanted.append(("STRIPE_EMULATOR_PORT", config.emulator_port, "the local Stripe emulator"))
        if config.port == config.emulator_port:
            other = _free_port_after(config.port, {config.port})
            return [
                f"PORT and STRIPE_EMULATOR_PORT are both {config.port}: give the emulator "
                f"another port, e.g. `STRIPE_EMULATOR_PORT={other} make run`."
            ]
    taken = {port for _, port, _ in wanted}
    problems = []
    for name, port, what in wanted:
        if port_in_use(port):
            other = _free_port_after(port, taken)
            example = f", e.g. `{name}={other} make run`" if other else ""
            problems.append(
                f"Port {port} on {HOST} ({name}, for {what}) is already in use, by another "
                f"`make run` or another program. Stop that, or set {name} to a free "
                f"port{example}."
            )
    return problems


def _terminate_with_parent(parent: int) -> Callable[[], None] | None:
    """Linux: the child gets SIGTERM when this script dies, even by SIGKILL, so nothing it
    started outlives it. Elsewhere only the signal handlers below stop the children."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it

    def in_child() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # this script died before prctl took effect
            os._exit(1)

    return in_child


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal is still a member
        return True
    return True


def _group_kill(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class Supervisor:
    """Starts processes, each in its own session (process group = its pid), and stops all of
    them however it is asked to."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        self.signals_received = 0

    def signals_install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only count. An exception raised here could land between starting a process and
        # recording it, and that process would be left running.
        self.signals_received += 1

    @property
    def stopping(self) -> bool:
        return self.signals_received > 0

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_terminate_with_parent(os.getpid()),  # safe: this script has no threads
        )
        self.processes[name] = process
        return process

    def forget(self, name: str) -> None:
        """Drop a process that has exited, killing anything it left in its group."""
        process = self.processes.pop(name)
        process.wait()
        _group_kill(process.pid)

    def run(self, name: str, command: list[str]) -> bool:
        """Run a one-off command to its end: False if it failed or a signal came first."""
        if self.stopping:
            return False
        process = self.start(name, command)
        while process.poll() is None:
            if self.stopping:
                return False  # stop_all stops it with the rest
            time.sleep(POLL_SECONDS)
        self.forget(name)
        return process.returncode == 0

    def wait_until_healthy(self, url: str, names: Iterable[str]) -> bool:
        """Until `url` answers 200: False after a signal, if one of `names` exits, or after
        READY_TIMEOUT_SECONDS."""
        watched = [self.processes[name] for name in names]
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.stopping or any(p.poll() is not None for p in watched):
                return False
            try:
                with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(POLL_SECONDS * 3)
        return False

    def stop_all(self) -> None:
        """SIGTERM the portal's processes and wait for them, then the emulator (a worker's
        last task may still call it); kill every group that outlives its grace, or at once
        on a further signal; return when every group is empty."""
        if not self.processes:
            return
        signals_seen = self.signals_received
        names = list(self.processes)
        stages = [
            ([n for n in names if n != EMULATOR], GRACE_SECONDS),
            ([n for n in names if n == EMULATOR], EMULATOR_GRACE_SECONDS),
        ]
        if any(p.poll() is None for p in self.processes.values()):
            say("\nStopping (a second Ctrl-C kills at once)...")
        for stage, grace in stages:
            for name in stage:
                if self.processes[name].poll() is None:
                    self.processes[name].terminate()
            if not self._wait_gone(stage, time.monotonic() + grace, signals_seen):
                break
        for process in self.processes.values():
            _group_kill(process.pid)
        for process in self.processes.values():
            process.wait()  # killed: at once
        # Orphans of a killed group (a worker's pool) are reaped by init; wait for that too.
        deadline = time.monotonic() + 5
        while any(map(_group_exists, self._pgids())) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        left = [str(pgid) for pgid in self._pgids() if _group_exists(pgid)]
        if left:
            say(f"Could not stop the process groups {', '.join(left)}.", error=True)
        self.processes.clear()

    def _pgids(self) -> list[int]:
        return [process.pid for process in self.processes.values()]

    def _wait_gone(self, names: list[str], deadline: float, signals_seen: int) -> bool:
        """True once the named processes and their groups are gone; False at the deadline or
        on a further signal."""
        while True:
            for name in names:
                self.processes[name].poll()  # reap the leader, so its group can empty
            alive = [name for name in names if _group_exists(self.processes[name].pid)]
            if not alive:
                return True
            if self.signals_received > signals_seen:
                say("Killing what is left.")
                return False
            if time.monotonic() >= deadline:
                say(f"Killing what did not stop in time: {', '.join(alive)}.")
                return False
            time.sleep(POLL_SECONDS)


class EmulatorKeeper:
    """Starts the local Stripe emulator and starts it again whenever it exits, waiting longer
    after each exit that comes soon after a start, and giving up after several."""

    def __init__(self, config: Config, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.url = config.emulator_url
        self.command = [
            PYTHON, "-m", "stripe_emulator", "--host", HOST, "--port", str(config.emulator_port),
            "--data-dir", str(config.data_dir / "stripe-emulator"),
        ]  # fmt: skip
        self.started_at = 0.0
        self.failures = 0
        self.retry_at: float | None = None

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.supervisor.start(EMULATOR, self.command)

    def wait_until_healthy(self) -> bool:
        return self.supervisor.wait_until_healthy(f"{self.url}/_emulator/health", [EMULATOR])

    def watch(self) -> None:
        """Called while the portal serves: notices an exit and starts the emulator again."""
        process = self.supervisor.processes.get(EMULATOR)
        if process is not None and process.poll() is not None:
            self.supervisor.forget(EMULATOR)
            ran_for = time.monotonic() - self.started_at
            self.failures = 0 if ran_for >= EMULATOR_STEADY_SECONDS else self.failures + 1
            say(
                f"\nThe Stripe emulator exited (code {process.returncode}). The portal keeps "
                "serving; its billing pages say the payment provider is not responding "
                "until the emulator is back.",
                error=True,
            )
            if self.failures >= EMULATOR_MAX_FAILURES:
                say(
                    f"It exited {self.failures} times in a row soon after starting, so it is "
                    "not started again: see its output above, then restart `make run`.",
                    error=True,
                )
                return
            delay = 2 ** (self.failures - 2) if self.failures > 1 else 0
            self.retry_at = time.monotonic() + delay
            say(f"Starting the Stripe emulator again in {delay} s...", error=True)
        if self.retry_at is not None and time.monotonic() >= self.retry_at:
            self.retry_at = None
            self.start()
            if self.wait_until_healthy():
                say(f"The Stripe emulator is back at {self.url}.")


def services(config: Config) -> dict[str, list[str]]:
    return {
        "web": [PYTHON, "manage.py", "runserver", f"{HOST}:{config.port}", "--noreload"],
        "worker": [PYTHON, "-m", "celery", "-A", "billing_portal", "worker", "--loglevel", "INFO",
                   "--concurrency", "2", "--without-gossip", "--without-mingle"],
        "beat": [PYTHON, "-m", "celery", "-A", "billing_portal", "beat", "--loglevel", "INFO"],
    }  # fmt: skip


def _failed(supervisor: Supervisor, message: str) -> int:
    """What serve() returns when a start-up step did not succeed: a signal is no failure."""
    if supervisor.stopping:
        return 0
    say(message, error=True)
    return 1


def serve(config: Config, supervisor: Supervisor) -> int:
    """Start everything and watch it until a signal (0) or a failure (1)."""
    emulator = None
    if supervisor.stopping:  # a signal while reading the configuration
        return 0
    if config.use_emulator:
        os.environ.update(STRIPE_SECRET_KEY=EMULATOR_KEY, STRIPE_API_BASE=config.emulator_url)
        # Each new Stripe customer on a clock of its own: `stripe_clock_advance` runs cycles.
        os.environ.setdefault("STRIPE_TEST_CLOCKS", "true")
        emulator = EmulatorKeeper(config, supervisor)
        emulator.start()  # it starts while the database migrates
    say("Applying database migrations (the first run takes a minute or two)...")
    if not supervisor.run("migrate", [PYTHON, "manage.py", "migrate", "--noinput"]):
        return _failed(supervisor, "`manage.py migrate` failed; see above.")
    if emulator is not None and not emulator.wait_until_healthy():
        return _failed(supervisor, "The Stripe emulator did not start; see above.")
    # The servers need only the migrated database: they start while the setup runs.
    # stripe_setup without a key only loads the plan catalog; demo_seed comes after it, as
    # the demo's trial license states the catalog's features.
    if supervisor.stopping:
        return 0
    for name, command in services(config).items():
        supervisor.start(name, command)
    for step in ("stripe_setup", "demo_seed"):
        if not supervisor.run(step, [PYTHON, "manage.py", step]):
            return _failed(supervisor, f"`manage.py {step}` failed; see above.")
    if not supervisor.wait_until_healthy(f"{config.url}/healthz", ["web", "worker", "beat"]):
        return _failed(supervisor, "The portal did not become healthy; see the output above.")

    if config.use_emulator:
        billing = (
            f"the local Stripe emulator at {config.emulator_url} "
            "(its checkout page offers test cards)"
        )
    elif os.environ["STRIPE_SECRET_KEY"]:
        billing = "Stripe"
    else:
        billing = "off (STRIPE_SECRET_KEY is empty)"
    public_url = os.environ.get("PORTAL_BASE_URL", "").rstrip("/")
    public = (
        f"  Public URL:    {public_url} (PORTAL_BASE_URL)\n"
        if public_url and public_url != config.url
        else ""
    )
    say(
        f"\n  Billing Portal is running at {config.url}/\n"
        f"{public}"
        f"  Demo login:    {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
        f"  Support admin: {config.url}/admin/  {SUPPORT_EMAIL} / {DEMO_PASSWORD}\n"
        f"  Billing:       {billing}\n"
        f"  Press Ctrl-C to stop.\n"
    )
    while not supervisor.stopping:
        time.sleep(POLL_SECONDS * 2)
        if emulator is not None:
            emulator.watch()
        for name, process in supervisor.processes.items():
            if name != EMULATOR and process.poll() is not None:
                say(
                    f"Stopping everything: {name} exited (code {process.returncode}); "
                    "see its output above.",
                    error=True,
                )
                return 1
    return 0


def main() -> int:
    os.chdir(ROOT)
    supervisor = Supervisor()
    supervisor.signals_install()
    try:
        config = config_read()
    except ConfigError as error:
        say(str(error), error=True)
        return 2
    problems = ports_check(config)
    if problems:
        say("\n".join(["Not starting:", *problems]), error=True)
        return 1
    os.environ["PORT"] = str(config.port)  # the settings derive PORTAL_BASE_URL from it
    try:
        return serve(config, supervisor)
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    sys.exit(main())
