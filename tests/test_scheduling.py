"""Beat's jobs claim their interval in the shared cache: a second beat's repeat is skipped."""

import time_machine
from django.core.cache import cache

from billing_portal import scheduling


def test_a_job_runs_once_per_interval_and_again_after_it(settings):
    settings.CELERY_BEAT_SCHEDULE = {"job": {"task": "x.tasks.job", "schedule": 600}}
    runs = []

    @scheduling.once_per_interval("x.tasks.job")
    def job() -> int:
        runs.append(1)
        return 7

    with time_machine.travel("2027-01-01T10:00:00+00:00", tick=False) as clock:
        assert job() == 7
        clock.move_to("2027-01-01T10:05:00+00:00")
        assert job() == 0  # a second beat's copy within the interval
        clock.move_to("2027-01-01T10:09:10+00:00")  # past 90 % of it
        assert job() == 7
    assert len(runs) == 2


def test_every_scheduled_job_claims_its_interval(settings):
    from billing import tasks as billing_tasks
    from licensing import tasks as licensing_tasks
    from outgoing import tasks as outgoing_tasks

    jobs = {
        "billing.tasks.invoices_sync": billing_tasks.invoices_sync,
        "billing.tasks.events_reconcile": billing_tasks.events_reconcile,
        "licensing.tasks.trial_ending_reminders_send": licensing_tasks.trial_ending_reminders_send,
        "outgoing.tasks.outgoing_deliveries_resume": outgoing_tasks.outgoing_deliveries_resume,
    }
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} == set(jobs)
    for name in jobs:
        cache.add(f"beat-claim:{name}", "1", timeout=60)  # claimed by another beat
        assert jobs[name].run() == 0
