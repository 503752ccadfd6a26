"""The session clock shift (TEST_CLOCK_START) reaches every Python process the suite starts."""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

from billing_portal.testing.clock import OFFSET_VARIABLE, START_VARIABLE

CHILD = """
import subprocess, sys, time
from billing_portal.testing.clock import clock_shift_from_environment
clock_shift_from_environment()
grandchild = subprocess.run(
    [sys.executable, "-c", "import time; print(time.time())"], capture_output=True, text=True
)
print(time.time(), grandchild.stdout.strip())
"""


def test_a_moved_session_moves_its_children_too():
    env = {k: v for k, v in os.environ.items() if k not in (START_VARIABLE, OFFSET_VARIABLE)}
    env[START_VARIABLE] = "2030-12-31T23:59:00+00:00"
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True
    )
    child, grandchild = (float(part) for part in result.stdout.split())
    start = datetime(2030, 12, 31, 23, 59, tzinfo=UTC).timestamp()
    assert start <= child < start + 30
    assert child <= grandchild < child + 30


def test_this_session_and_a_child_agree_on_the_time():
    """Whatever moment this session runs at (CI moves it), a child process is at the same."""
    result = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        capture_output=True,
        text=True,
        check=True,
    )
    ours = time.time()  # this session's clock, moved or not: what the child must agree with
    assert abs(float(result.stdout) - ours) < 30
