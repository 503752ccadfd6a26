"""A real Celery worker, on the configured broker (Redis in CI, the file broker locally),
runs the welcome email that signup queues on commit."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from accounts.services import customer_signup
from billing_portal.celery import app as celery_app

WAIT_SECONDS = 30


@pytest.mark.django_db(transaction=True)
def test_worker_sends_the_welcome_email_queued_by_signup(monkeypatch, other_membership):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    celery_app.control.purge()

    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        membership = customer_signup(email="worker@example.com", password="x-long-passphrase")
        deadline = time.monotonic() + WAIT_SECONDS
        while not mail.outbox and time.monotonic() < deadline:
            time.sleep(0.05)

    assert [m.to for m in mail.outbox] == [["worker@example.com"]]
    assert membership.customer.customer_id in mail.outbox[0].body
