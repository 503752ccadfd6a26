"""`make run`: the portal with everything it needs on one machine, until Ctrl-C.

Starts the local Stripe emulator (unless STRIPE_SECRET_KEY is set: then that Stripe is
used, and an empty value switches billing off), migrates, seeds the demo logins, registers
the webhook endpoint, and runs the web server, a Celery worker and beat side by side.
Ctrl-C stops everything this started.

Run with the project's virtualenv python from the project root.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import environ  # noqa: E402

from accounts.demo import DEMO_EMAIL, DEMO_PASSWORD, SUPPORT_EMAIL  # noqa: E402

PYTHON = sys.executable
HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))
URL = f"http://{HOST}:{PORT}"
EMULATOR_PORT = int(os.environ.get("STRIPE_EMULATOR_PORT", "12111"))
EMULATOR_URL = f"http://{HOST}:{EMULATOR_PORT}"
# The emulator accepts any sk_test_ key; dj-stripe wants 24 letters or digits after it.
EMULATOR_KEY = "sk_test_" + "localemulator" + "0" * 16
READY_TIMEOUT_SECONDS = 120

EMULATOR = [
    PYTHON,
    "-m",
    "stripe_emulator",
    "--host",
    HOST,
    "--port",
    str(EMULATOR_PORT),
    "--data-dir",
    os.environ.get("DATA_DIR", str(ROOT / "var")) + "/stripe-emulator",
]
SERVICES = {
    "web": [PYTHON, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
    "worker": [PYTHON, "-m", "celery", "-A", "billing_portal", "worker", "--loglevel", "INFO",
               "--concurrency", "2", "--without-gossip", "--without-mingle"],
    "beat": [PYTHON, "-m", "celery", "-A", "billing_portal", "beat", "--loglevel", "INFO"],
}  # fmt: skip


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True)


def start(command: list[str]) -> subprocess.Popen:
    # Each in its own process group, so stopping it stops its children too.
    return subprocess.Popen(command, cwd=ROOT, start_new_session=True)


def wait_until_healthy(url: str, processes: dict[str, subprocess.Popen]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def stop(processes: dict[str, subprocess.Popen]) -> None:
    """Ask each service to shut down cleanly, then kill whatever of its group is left."""
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 15
    for process in processes.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def main() -> int:
    os.chdir(ROOT)
    processes: dict[str, subprocess.Popen] = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if (ROOT / ".env").is_file():  # the settings read it too; here it decides on the emulator
        environ.Env.read_env(ROOT / ".env")
    use_emulator = "STRIPE_SECRET_KEY" not in os.environ
    try:
        if use_emulator:
            os.environ.update(STRIPE_SECRET_KEY=EMULATOR_KEY, STRIPE_API_BASE=EMULATOR_URL)
            processes["stripe-emulator"] = start(EMULATOR)
            if not wait_until_healthy(f"{EMULATOR_URL}/_emulator/health", processes):
                print("The Stripe emulator did not start; see above.", file=sys.stderr)
                return 1
        print("Applying database migrations (the first run takes a minute or two)...", flush=True)
        manage("migrate", "--noinput")
        manage("stripe_setup")  # without a key it only loads the plan catalog
        manage("demo_seed")  # after the catalog: the demo's trial license states its features
        for name, command in SERVICES.items():
            processes[name] = start(command)
        if not wait_until_healthy(f"{URL}/healthz", processes):
            print("The portal did not become healthy; see the output above.", file=sys.stderr)
            return 1

        billing = (
            f"the local Stripe emulator at {EMULATOR_URL} (its checkout page offers test cards)"
            if use_emulator
            else (
                "Stripe" if os.environ["STRIPE_SECRET_KEY"] else "off (STRIPE_SECRET_KEY is empty)"
            )
        )
        print(
            f"\n  Billing Portal is running at {URL}/\n"
            f"  Demo login:    {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            f"  Support admin: {URL}/admin/  {SUPPORT_EMAIL} / {DEMO_PASSWORD}\n"
            f"  Billing:       {billing}\n"
            f"  Press Ctrl-C to stop.\n",
            flush=True,
        )
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        exited = [name for name, p in processes.items() if p.poll() is not None]
        print(f"Stopped because {', '.join(exited)} exited.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
