"""`bench/http_compare.py` (`make bench`) in a tiny configuration: it builds its own
PostgreSQL database, serves the portal with the production settings and prints every
figure. Nothing about the figures' size is asserted: the machine is shared."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench import http_compare
from bench.http_compare import DEFAULT_SERVER

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "http_compare.py"
NUMBER = r"[\d.]+"


@pytest.fixture(scope="module")
def wrk():
    try:
        return http_compare.wrk_ensure()  # installs Debian's wrk when missing and run as root
    except (SystemExit, subprocess.CalledProcessError) as error:
        pytest.skip(f"wrk is not installed and could not be installed with apt-get: {error}")


@pytest.mark.bench
def test_http_compare_prints_every_figure(wrk):
    environment = {**os.environ}
    environment.pop("DJANGO_SETTINGS_MODULE", None)  # the script serves production settings
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--server", "default", "--customers", "300",
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
            rf"server \+ {NUMBER} ms PostgreSQL \(wrk {NUMBER} ms\)  "
            rf"\(\d+ requests, 0 non-2xx/errors\)  machine: \d+% idle, \d+% stolen; "
            rf"busiest worker's share of the server's CPU, run by run: \d+%",
            line.group(0),
        ), line.group(0)
    assert re.search(
        rf"check-access / no-op: requests/s {NUMBER} \(medians; round by round {NUMBER}, the "
        rf"median of {NUMBER}\), p99 {NUMBER}",
        output,
    ), output
    assert re.search(r"webhook receipt over HTTP .*: +\d+ events/s, 50 events, 0 not 200", output)
    assert re.search(r"access log: [1-9]\d* lines", output), output
    # A private PostgreSQL is reached over its socket and over TCP in turn; a DATABASE_URL's
    # server as the URL says.
    ways = (
        ["over [^|]+"] if environment.get("DATABASE_URL") else ["over its Unix socket", "over TCP"]
    )
    for way in ways:
        row = rf"^\| {DEFAULT_SERVER} \| on \| {way} \| 4 \| .* \| \d+% / \d+% \|$"
        assert re.search(row, output, re.MULTILINE), output


def server_options(argv: list[str]) -> dict[str, str]:
    """What shapes a server: its program and the options that set workers, threads, the
    interface and the access log (not where it listens)."""
    shaping = {"--interface", "--workers", "--blocking-threads", "--threads", "--worker-class"}
    options = {"program": next(Path(a).name for a in argv if Path(a).name in PROGRAMS)}
    for i, arg in enumerate(argv):
        if arg in shaping:
            options[arg] = argv[i + 1]
        elif arg in {"--access-log", "--no-access-log", "--access-logfile"}:
            options["access log"] = "off" if arg == "--no-access-log" else "on"
    return options


PROGRAMS = {"granian", "gunicorn"}


def test_docker_runs_the_server_make_bench_measures():
    """The Dockerfile's command and docker-compose's web service start the default shape
    of bench/http_compare.py, access log on, so `make bench` measures what is deployed."""
    expected = server_options(
        [*http_compare.servers(8000)[DEFAULT_SERVER].command,
         *http_compare.servers(8000)[DEFAULT_SERVER].log_on]
    )  # fmt: skip
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*?\])$", dockerfile, re.MULTILINE | re.DOTALL)
                     .group(1).replace("\\\n", ""))  # fmt: skip
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    web = shlex.split(shlex.split(compose["services"]["web"]["command"])[2].split("&&")[-1])
    assert server_options(cmd) == expected
    assert server_options(web) == expected
    assert "--access-log" in cmd and "--access-log" in web
    assert "/healthz" in " ".join(compose["services"]["web"]["healthcheck"]["test"])


def test_noop_view_is_mounted_only_with_bench_noop_view(client, settings):
    """Off by default: no deployment answers /bench/noop unless asked to."""
    import importlib

    from django.urls import Resolver404, clear_url_caches, resolve

    import billing_portal.urls

    assert client.get("/bench/noop").status_code == 404
    settings.BENCH_NOOP_VIEW = True
    try:
        importlib.reload(billing_portal.urls)
        clear_url_caches()
        response = client.get("/bench/noop")
        assert (response.status_code, response.content) == (200, b"{}")
        assert resolve("/bench/noop").func.__name__ == "bench_noop"
    finally:
        settings.BENCH_NOOP_VIEW = False
        importlib.reload(billing_portal.urls)
        clear_url_caches()
    with pytest.raises(Resolver404):
        resolve("/bench/noop")


def test_a_run_with_every_connection_on_one_worker_is_measured_again():
    def runs(*shares):
        made = iter(shares)

        def measure():
            return http_compare.Run(1, 1.0, 1.0, 1.0, 1.0, 0, busiest=next(made))

        return measure

    run, repeated = http_compare.spread_run(runs(1.0, 0.97, 0.52), workers=2)
    assert run.busiest == 0.52
    assert [r.busiest for r in repeated] == [1.0, 0.97]
    # Spread at once: nothing repeated; one worker: nothing to spread over.
    assert http_compare.spread_run(runs(0.6), workers=2)[1] == []
    assert http_compare.spread_run(runs(1.0), workers=1)[1] == []
    # At most LOPSIDED_RETRIES more runs, and the last counts as it is.
    run, repeated = http_compare.spread_run(runs(*[1.0] * 10), workers=2)
    assert len(repeated) == http_compare.LOPSIDED_RETRIES and run.busiest == 1.0


def test_the_report_prints_each_run_measured_again_with_its_figures(capsys):
    def run(rps, busiest):
        return http_compare.Run(1000, 1.0, rps, 1.0, 2.0, 0, busiest=busiest)

    noop, check = [run(3000, 0.5), run(3100, 0.52)], [run(2900, 0.51), run(2800, 0.5)]
    row = {
        "no-op": http_compare.summary(noop),
        "check-access": http_compare.summary(check),
        "round ratios": [2900 / 3000, 2800 / 3100],
        "lopsided": {"no-op": [], "check-access": [run(1990, 1.0), run(2050, 0.97)]},
    }
    http_compare.report(4, row)
    lines = capsys.readouterr().out.splitlines()
    repeated = [line for line in lines if "measured again" in line]
    assert repeated == [
        "   4 conn  check-access: 2 run(s) with every connection on one worker, measured "
        "again: 1990 req/s (100%), 2050 req/s (97%)"
    ]
    # The repeated runs are not in the medians: 3050 and 2850 req/s.
    assert "0.93 (medians; round by round 0.93, the median of 0.97 0.90)" in lines[-1]
