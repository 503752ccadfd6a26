"""Requests per second of the Stripe emulator over HTTP: create a customer, then retrieve it.

Run with ``python -m stripe_emulator.bench [--seconds 3] [--clients 1]``; it starts
its own emulator on a free port with a throwaway data dir, so it needs nothing running.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import requests

from .app import Emulator
from .server import EmulatorHTTPServer

API_KEY = "sk_test_benchmark000000000000000000"


def create_then_retrieve(base_url: str, deadline: float, counts: list[int]) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {API_KEY}"
    done = 0
    while time.monotonic() < deadline:
        created = session.post(
            f"{base_url}/v1/customers", data={"email": "bench@example.com"}, timeout=10
        )
        created.raise_for_status()
        session.get(
            f"{base_url}/v1/customers/{created.json()['id']}", timeout=10
        ).raise_for_status()
        done += 2
    counts.append(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        emulator = Emulator(Path(data_dir))
        server = EmulatorHTTPServer(emulator, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        counts: list[int] = []
        started = time.monotonic()
        deadline = started + args.seconds
        clients = [
            threading.Thread(
                target=create_then_retrieve, args=(emulator.base_url, deadline, counts)
            )
            for _ in range(args.clients)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        elapsed = time.monotonic() - started
        server.shutdown()
        server.server_close()
        emulator.close()
    total = sum(counts)
    print(
        f"stripe emulator: {total / elapsed:.0f} requests/s "
        f"({total} customer create+retrieve requests over HTTP, "
        f"{args.clients} client(s), {elapsed:.1f} s)"
    )


if __name__ == "__main__":
    main()
