"""The embedded Celery broker of `make run` and the tests: kombu's file transport, except
that each message is written under a temporary name and renamed into the queue once whole.
kombu's own writer creates the message's file first and fills it afterwards, so a worker
polling at that moment takes an empty file, dies on it (JSONDecodeError) and the task is
lost. A rename within one folder is atomic: a reader sees the whole message or none."""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # The same name as kombu's (time first, so the queue reads oldest first); the
        # partial file's name matches no queue, so no reader takes it.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".partial-{uuid.uuid4().hex}")
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as error:
            raise ChannelError(f"Cannot add file {final!r} to directory") from error


class Transport(filesystem.Transport):
    Channel = Channel


def filesystem_transport_register() -> None:
    """Make `filesystem://` broker URLs use this transport in this process."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
