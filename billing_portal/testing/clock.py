"""Moves the clock of a whole test session to a chosen moment, for this process and every
Python process it starts, so the suite can be run at a year end, a leap day or a night of a
daylight-saving change and show that nothing depends on today's date.

`TEST_CLOCK_START` (ISO 8601 with an offset, e.g. `2027-12-31T23:59:00+00:00`) names the
moment the session starts at; time then runs on from there. The test settings call
`clock_shift_from_environment()`. The shift is passed to child processes as a fixed offset in
`TEST_CLOCK_OFFSET`, applied by `site/sitecustomize.py`, which is put first on their
`PYTHONPATH`, so a parent and its children always agree on the time.
"""

import importlib.util
import os
import sys
import time
from datetime import datetime
from pathlib import Path

START_VARIABLE = "TEST_CLOCK_START"
OFFSET_VARIABLE = "TEST_CLOCK_OFFSET"
SITE_DIR = Path(__file__).resolve().parent / "site"


def clock_shift_from_environment() -> float | None:
    """Start the shift named by the environment, once per process; return its offset in
    seconds, or None when the clock is not moved."""
    if os.environ.get(OFFSET_VARIABLE) is None:
        start = os.environ.get(START_VARIABLE, "").strip()
        if not start:
            return None
        moment = datetime.fromisoformat(start)
        if moment.tzinfo is None:
            raise ValueError(
                f"{START_VARIABLE} needs a UTC offset, as in 2027-12-31T23:59:00+00:00"
            )
        os.environ[OFFSET_VARIABLE] = repr(moment.timestamp() - time.time())
        paths = [str(SITE_DIR), os.environ.get("PYTHONPATH", "")]
        os.environ["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)

    # A child process has already loaded the site module as `sitecustomize`: reuse it, so
    # the shift starts once per process.
    site = sys.modules.get("sitecustomize")
    if getattr(site, "OFFSET_VARIABLE", None) != OFFSET_VARIABLE:
        spec = importlib.util.spec_from_file_location(
            "sitecustomize", SITE_DIR / "sitecustomize.py"
        )
        site = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(site)
        sys.modules.setdefault("sitecustomize", site)
    return site.clock_shift_start()
