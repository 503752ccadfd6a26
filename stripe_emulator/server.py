"""The emulator over HTTP: a threading server, so a webhook receiver that calls back into
the API while a delivery is in flight is answered at once."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .app import Emulator, Response


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, delayed ACKs cost 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.server.emulator.handle(
            self.command, self.path, dict(self.headers.items()), body
        )
        if response.hang is not None:
            # A request done before its answer was lost (timeout_after_commit) still sends
            # its webhooks, as Stripe would.
            self.server.emulator.release(response)
            self._hang(response.hang)
            return
        try:
            self._send(response)
        finally:
            self.server.emulator.release(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)
        self.wfile.flush()

    def _hang(self, seconds: float) -> None:
        """Answer nothing for ``seconds``, then drop the connection (a timeout fault)."""
        time.sleep(seconds)
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have given up already
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, emulator: Emulator, host: str, port: int, *, verbose: bool = False) -> None:
        super().__init__((host, port), _Handler)
        self.emulator = emulator
        self.verbose = verbose
        bound_host, bound_port = self.server_address[:2]
        emulator.base_url = f"http://{bound_host}:{bound_port}"


def serve(
    host: str,
    port: int,
    data_dir: Path,
    *,
    public_url: str | None = None,
    verbose: bool = False,
    clock_advance_delay: float = 0.5,
    **retries: Any,
) -> None:
    emulator = Emulator(data_dir, clock_advance_delay=clock_advance_delay, **retries)
    server = EmulatorHTTPServer(emulator, host, port, verbose=verbose)
    if public_url:
        emulator.base_url = public_url.rstrip("/")
    # SIGTERM (from `make run`, a process manager) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"Stripe emulator listening on {emulator.base_url} (data in {data_dir})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        emulator.close()
