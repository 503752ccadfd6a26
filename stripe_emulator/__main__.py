"""``python -m stripe_emulator --host 127.0.0.1 --port 12111 --data-dir DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="stripe_emulator", description="Offline Stripe API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--data-dir", type=Path, default=Path(".stripe-emulator"))
    parser.add_argument(
        "--public-url",
        help="base of the hosted pages' URLs when browsers reach the emulator at another "
        "address than it binds (e.g. in a container); default http://HOST:PORT",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--clock-advance-seconds",
        type=float,
        default=0.5,
        help="how long a test clock stays `advancing` before it is ready (default 0.5)",
    )
    args = parser.parse_args(argv)
    serve(
        args.host,
        args.port,
        args.data_dir,
        public_url=args.public_url,
        verbose=args.verbose,
        clock_advance_delay=args.clock_advance_seconds,
    )


if __name__ == "__main__":
    main()
