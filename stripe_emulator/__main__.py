"""``python -m stripe_emulator --host 127.0.0.1 --port 12111 --data-dir DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .app import retry_settings
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
    parser.add_argument(
        "--retry-schedule",
        default=None,
        help="days between the automatic attempts of a failed renewal, e.g. 3,5,7 (Stripe's "
        "custom schedule); default: Smart Retries' 8 tries within 2 weeks, 2,2,2,2,2,2,2; "
        "'' for no retries",
    )
    parser.add_argument(
        "--retries-final-status",
        choices=("canceled", "unpaid", "past_due"),
        default="canceled",
        help="the subscription after the last retry fails (default canceled)",
    )
    parser.add_argument(
        "--retries-final-invoice",
        choices=("open", "uncollectible"),
        default="open",
        help="the invoice after the last retry fails (default open: left past due)",
    )
    args = parser.parse_args(argv)
    retries: dict[str, object] = {
        "retries_final_status": args.retries_final_status,
        "retries_final_invoice": args.retries_final_invoice,
    }
    if args.retry_schedule is not None:
        try:
            days = [float(day) for day in args.retry_schedule.split(",") if day.strip()]
            retry_settings(days, args.retries_final_status, args.retries_final_invoice)
        except ValueError as error:
            parser.error(f"--retry-schedule: {error}")
        retries["retry_schedule"] = tuple(days)
    serve(
        args.host,
        args.port,
        args.data_dir,
        public_url=args.public_url,
        verbose=args.verbose,
        clock_advance_delay=args.clock_advance_seconds,
        **retries,
    )


if __name__ == "__main__":
    main()
