"""Beat's periodic jobs run once per interval however many beats and workers run.

Celery's beat sends each job once and one worker takes it; but a second beat (two instances
each started with one, or a beat restarted mid-interval) would send it again. Each job
claims its interval in the shared cache (Redis, `CACHE_URL`, when instances share one): a
run that finds a claim younger than 90 % of the interval is skipped. The jobs are idempotent
anyway; the claim keeps them from doing their work twice at once.
"""

import functools
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)
# Within this share of its interval, a job that already ran is not run again.
CLAIM_SHARE = 0.9


def _interval(task_name: str) -> float:
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        if entry["task"] == task_name:
            return float(entry["schedule"])
    raise LookupError(f"{task_name} is not in CELERY_BEAT_SCHEDULE")


def interval_claim(task_name: str) -> bool:
    """True for the first run in the current interval of a beat job, False for a repeat."""
    seconds = max(int(_interval(task_name) * CLAIM_SHARE), 1)
    return cache.add(f"beat-claim:{task_name}", "1", timeout=seconds)


def once_per_interval(task_name: str) -> Callable[[Callable[[], int]], Callable[[], int]]:
    """A beat job's body, skipped (returning 0) when this interval's run already happened."""

    def wrap(job: Callable[[], int]) -> Callable[[], int]:
        @functools.wraps(job)
        def run() -> int:
            if not interval_claim(task_name):
                logger.info("%s already ran in this interval; skipped", task_name)
                return 0
            return job()

        return run

    return wrap
