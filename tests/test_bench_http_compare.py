"""`bench/http_compare.py` (`make bench`) in a tiny configuration: it builds its own
PostgreSQL database, serves the portal with the production settings and prints every
figure. Nothing about the figures' size is asserted: the machine is shared."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "http_compare.py"
NUMBER = r"[\d.]+"


@pytest.fixture(scope="module")
def wrk():
    from bench.http_compare import wrk_ensure

    try:
        return wrk_ensure()  # installs Debian's wrk when missing and run as root
    except (SystemExit, subprocess.CalledProcessError) as error:
        pytest.skip(f"wrk is not installed and could not be installed with apt-get: {error}")


@pytest.mark.bench
def test_http_compare_prints_every_figure(wrk):
    environment = {**os.environ}
    environment.pop("DJANGO_SETTINGS_MODULE", None)  # the script serves production settings
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--server", "gunicorn-gthread-2x4", "--customers", "300",
         "--seconds", "1", "--warmup", "0", "--rounds", "1", "--connections", "4",
         "--events", "50", "--schema", "models"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "300 customers with 5 features each" in output
    for endpoint in ("no-op", "check-access"):
        line = re.search(rf"^ +4 conn  {endpoint} .*$", output, re.MULTILINE)
        assert line, output
        assert re.search(
            rf"{NUMBER} req/s .* p50 +{NUMBER} ms  p99 +{NUMBER} ms  CPU/request {NUMBER} ms "
            rf"server \+ {NUMBER} ms PostgreSQL  \(\d+ requests, 0 non-2xx/errors\)",
            line.group(0),
        ), line.group(0)
    assert re.search(rf"check-access / no-op: requests/s {NUMBER}, p99 {NUMBER}", output)
    assert re.search(r"webhook receipt over HTTP .*: +\d+ events/s, 50 events, 0 not 200", output)
    assert re.search(r"access log: [1-9]\d* lines", output), output
    assert re.search(r"^\| gunicorn-gthread-2x4 \| on \| 4 \| ", output, re.MULTILINE), output
