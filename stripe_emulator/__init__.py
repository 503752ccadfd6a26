"""An offline, strict, stateful emulator of the part of Stripe's API the portal uses.

Run it as a server (``python -m stripe_emulator``) or in-process in tests::

    emulator = emulator_in_process(webhook_callback=receive)
    client = stripe.StripeClient("sk_test_…", http_client=InProcessHTTPClient(emulator))
"""

from .app import Emulator, Response
from .context import API_VERSION
from .inprocess import InProcessHTTPClient, emulator_in_process
from .server import EmulatorHTTPServer

__all__ = [
    "API_VERSION",
    "Emulator",
    "EmulatorHTTPServer",
    "InProcessHTTPClient",
    "Response",
    "emulator_in_process",
]
