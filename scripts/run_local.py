"""`make run`: migrate, seed the demo logins, then run the web server, a Celery worker and
beat side by side until Ctrl-C, which stops everything this started.

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

from accounts.demo import DEMO_EMAIL, DEMO_PASSWORD, SUPPORT_EMAIL  # noqa: E402

PYTHON = sys.executable
HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))
URL = f"http://{HOST}:{PORT}"
READY_TIMEOUT_SECONDS = 120

SERVICES = {
    "web": [PYTHON, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
    "worker": [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "billing_portal",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "2",
        "--without-gossip",
        "--without-mingle",
    ],
    "beat": [PYTHON, "-m", "celery", "-A", "billing_portal", "beat", "--loglevel", "INFO"],
}


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True)


def wait_until_healthy(processes: dict[str, subprocess.Popen]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes.values()):
            return False
        try:
            with urllib.request.urlopen(f"{URL}/healthz", timeout=2) as response:  # noqa: S310
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
    print("Applying database migrations (the first run takes a minute or two)...", flush=True)
    manage("migrate", "--noinput")
    manage("demo_seed")

    processes: dict[str, subprocess.Popen] = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for name, command in SERVICES.items():
            # Each in its own process group, so stopping it stops its children too.
            processes[name] = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
        if not wait_until_healthy(processes):
            print("The portal did not become healthy; see the output above.", file=sys.stderr)
            return 1
        print(
            f"\n  Billing Portal is running at {URL}/\n"
            f"  Demo login:    {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            f"  Support admin: {URL}/admin/  {SUPPORT_EMAIL} / {DEMO_PASSWORD}\n"
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
