"""The embedded file broker under concurrency: a worker polling while messages are being
written takes each message whole, never a half-written file."""

import threading
import time

from kombu import Connection
from kombu.transport import filesystem

from billing_portal.broker import Transport

MESSAGES = 400
PAYLOAD = {"body": "x" * 200_000}  # large enough that a write is not one instant


def produce_and_consume(transport, folder) -> tuple[int, list[BaseException]]:
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    received, errors, done = [], [], threading.Event()

    def consume() -> None:
        with Connection(transport=transport, transport_options=options) as connection:
            channel = connection.default_channel
            deadline = time.monotonic() + 30
            while len(received) < MESSAGES and time.monotonic() < deadline:
                try:
                    received.append(channel._get("q"))
                except filesystem.Empty:
                    if done.is_set() and not any(folder.glob("*.q.msg")):
                        break
                except Exception as error:  # noqa: BLE001 - the failure under test
                    errors.append(error)
                    break

    consumer = threading.Thread(target=consume)
    consumer.start()
    with Connection(transport=transport, transport_options=options) as connection:
        channel = connection.default_channel
        for _ in range(MESSAGES):
            channel._put("q", PAYLOAD)
    done.set()
    consumer.join(timeout=60)
    return len(received), errors


def test_a_polling_worker_gets_every_message_whole(tmp_path):
    count, errors = produce_and_consume(Transport, tmp_path)
    assert errors == []
    assert count == MESSAGES


def test_filesystem_urls_use_this_transport(settings):
    from billing_portal.celery import app

    with Connection("filesystem://", transport_options={}) as connection:
        assert isinstance(connection.transport, Transport)
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        with app.connection_for_write() as connection:
            assert isinstance(connection.transport, Transport)
