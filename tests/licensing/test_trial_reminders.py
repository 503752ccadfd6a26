from datetime import timedelta

from django.conf import settings
from django.core import mail
from django.utils import timezone

from billing_portal.celery import app as celery_app
from licensing.models import CustomerPlan, Plan
from licensing.services import trial_ending_reminders_send
from licensing.tasks import trial_ending_reminders_send as reminders_task
from tests.accounts.factories import MembershipFactory


def customer_ending_in(delta, email):
    membership = MembershipFactory(user__email=email)
    membership.customer.trial_ends_at = timezone.now() + delta
    membership.customer.save()
    return membership.customer


def test_trials_ending_within_three_days_are_told_once(db, django_capture_on_commit_callbacks):
    soon = customer_ending_in(timedelta(days=2), "soon@example.com")
    customer_ending_in(timedelta(days=10), "later@example.com")
    customer_ending_in(timedelta(days=-1), "ended@example.com")
    paying = customer_ending_in(timedelta(days=2), "paying@example.com")
    plan = Plan.objects.create(code="pro", name="Pro")
    CustomerPlan.objects.create(
        customer=paying, plan=plan, status=CustomerPlan.Status.ACTIVE, subscription_id="sub_1"
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert trial_ending_reminders_send() == 1
        assert trial_ending_reminders_send() == 0

    assert [m.to for m in mail.outbox] == [["soon@example.com"]]
    assert mail.outbox[0].subject.startswith("Your free trial ends on")
    assert "2 days" in mail.outbox[0].body
    soon.refresh_from_db()
    assert soon.trial_reminder_sent_at is not None


def test_beat_runs_the_reminders_every_hour():
    schedule = settings.CELERY_BEAT_SCHEDULE["trial-ending-reminders"]
    assert schedule["task"] == reminders_task.name
    assert schedule["schedule"] == 3600
    assert reminders_task.name in celery_app.tasks
