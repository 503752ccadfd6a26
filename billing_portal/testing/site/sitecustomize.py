"""Applies a test session's clock shift (`TEST_CLOCK_OFFSET`, seconds) to a Python process
the suite started; see billing_portal/testing/clock.py. Does nothing without that variable."""

import contextlib
import os
import time

OFFSET_VARIABLE = "TEST_CLOCK_OFFSET"
_shift: float | None = None


def clock_shift_start() -> float | None:
    """Travel by the offset, ticking on from there; once per process."""
    global _shift
    offset = os.environ.get(OFFSET_VARIABLE)
    if offset and _shift is None:
        import time_machine

        time_machine.travel(time.time() + float(offset), tick=True).start()
        _shift = float(offset)
    return _shift


# A Python without time-machine (not the project's venv) keeps the real time.
with contextlib.suppress(ImportError):
    clock_shift_start()
