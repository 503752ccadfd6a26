import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    """A service of the business: answers each POST with the next status of `answers`
    (the last one repeats), after `delay` seconds, and keeps what it received."""

    def __init__(self):
        self.answers = [200]
        self.delay = 0.0
        self.received: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append((dict(self.headers), body))
                time.sleep(receiver.delay)
                index = min(len(receiver.received) - 1, len(receiver.answers) - 1)
                try:
                    self.send_response(receiver.answers[index])
                    self.end_headers()
                    self.wfile.write(b"ok")
                except BrokenPipeError:  # the portal gave up waiting (the timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()
