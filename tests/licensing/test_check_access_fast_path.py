"""check-access's lean path (licensing/api/fast.py, in front of Django's handler in the
WSGI application) answers exactly as the DRF view does: every reason, warning and error,
the 401s and the envelope; in one query with a remembered key; with revocation, plan,
catalog and standing changes seen in time."""

import logging
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.admin.sites import site
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.response import Response

from licensing.api import authentication
from licensing.api.authentication import service_key_create
from licensing.api.fast import FIELDS
from licensing.catalog import catalog_read
from licensing.models import CustomerPlan, Plan, PlanFeature, ServiceAPIKey
from licensing.services import catalog_load, customer_plan_apply, usage_record
from licensing.spend import spend_cap_set

from .api_calls import CHECK, FrontDoor

NOW = datetime(2027, 5, 14, 9, 30, tzinfo=UTC)


@pytest.fixture
def customers(membership, other_membership, catalog):
    return membership.customer, other_membership.customer


def ask(client, body, *, key=None, raw=None, content_type="application/json"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = raw if raw is not None else body
    return client.post(CHECK, data, content_type=content_type, **headers)


def both_paths(settings, body, **kwargs):
    """The same question asked through the WSGI application (the lean path in front) and
    of Django's handler (which never has it): (lean, slow)."""
    return ask(FrontDoor(), body, **kwargs), ask(Client(), body, **kwargs)


def same(lean, slow):
    assert lean.status_code == slow.status_code, (lean.content, slow.content)
    assert lean["Content-Type"] == slow["Content-Type"]
    assert lean.json() == slow.json()
    return lean


def plan(customer, code, status=CustomerPlan.Status.ACTIVE, *, past_due_since=None):
    customer_plan_apply(
        customer=customer,
        plan=Plan.objects.get(code=code),
        status=status,
        current_period_start=timezone.now() - timedelta(days=3),
        current_period_end=timezone.now() + timedelta(days=27),
        cancel_at_period_end=False,
        subscription_id="sub_fast",
    )
    if past_due_since:
        CustomerPlan.objects.filter(customer=customer).update(past_due_since=past_due_since)


def question(customer, feature="api_calls", **extra):
    return {"customer_id": customer.customer_id, "feature": feature, **extra}


CASES = {
    "ok, metered, with soft limit": (None, "api_calls", {"requested_usage": 5}),
    "ok, boolean": ("pro", "sso", {}),
    "feature_not_in_plan": (None, "sso", {}),
    "usage_limit_exceeded": (None, "api_calls", {"requested_usage": 999_999}),
    "never resets": ("starter", "projects", {"requested_usage": 1}),
    "customer_not_found": ("unknown", "api_calls", {}),
    "trial_expired": ("expired", "api_calls", {}),
    "no_active_plan": ("canceled", "api_calls", {}),
    "past_due, in the grace (warning)": ("grace", "api_calls", {}),
    "past_due, after the grace": ("past_due", "api_calls", {}),
    "spend_cap_reached": ("capped", "api_calls", {"requested_usage": 200_000}),
    "unknown feature": (None, "no_such_feature", {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_reason_and_warning_is_answered_the_same_by_both_paths(
    settings, customers, service_key, case
):
    customer, _other = customers
    setup, feature, extra = CASES[case]
    with time_machine.travel(NOW, tick=False):
        customer.trial_ends_at = NOW + timedelta(days=10)  # in the free trial, unless below
        customer.save(update_fields=["trial_ends_at"])
        if setup in ("pro", "starter"):
            plan(customer, setup)
        elif setup == "expired":
            customer.trial_ends_at = NOW - timedelta(seconds=1)
            customer.save(update_fields=["trial_ends_at"])
        elif setup == "canceled":
            plan(customer, "pro", CustomerPlan.Status.CANCELED)
            customer.trial_ends_at = NOW - timedelta(days=1)
            customer.save(update_fields=["trial_ends_at"])
        elif setup == "grace":
            plan(customer, "pro", CustomerPlan.Status.PAST_DUE, past_due_since=NOW)
        elif setup == "past_due":
            plan(customer, "pro", CustomerPlan.Status.PAST_DUE, past_due_since=NOW - timedelta(30))
        elif setup == "capped":
            plan(customer, "pro")
            spend_cap_set(customer=customer, feature=None, amount=6000, thresholds=[100],
                          mode="stop")  # fmt: skip
        usage_record(customer=customer, feature="api_calls", quantity=7, idempotency_key="u1")
        body = question(customer, feature, **extra)
        if setup == "unknown":
            body["customer_id"] = "cust_" + uuid.uuid4().hex
        lean, slow = both_paths(settings, body, key=service_key)
    answer = same(lean, slow)
    assert lean.lean and isinstance(slow, Response)  # each path answered
    expected = {
        "ok, metered, with soft limit": (200, "ok"),
        "ok, boolean": (200, "ok"),
        "feature_not_in_plan": (403, "feature_not_in_plan"),
        "usage_limit_exceeded": (403, "usage_limit_exceeded"),
        "never resets": (200, "ok"),
        "customer_not_found": (403, "customer_not_found"),
        "trial_expired": (403, "trial_expired"),
        "no_active_plan": (403, "no_active_plan"),
        "past_due, in the grace (warning)": (200, "ok"),
        "past_due, after the grace": (403, "past_due"),
        "spend_cap_reached": (403, "spend_cap_reached"),
        "unknown feature": (403, "feature_not_in_plan"),
    }[case]
    assert (answer.status_code, answer.json()["reason"]) == expected
    if case.startswith("past_due, in"):
        assert answer.json()["warning"] == "payment_past_due"
    if case.startswith("ok, metered"):
        assert answer.json()["usage"]["used"] == 7
        assert answer.json()["soft_limit"] == {"limit": 800, "exceeded": False}


BAD = {
    "no key": ({}, None, None),
    "unknown key": ({}, "bp_unknown", None),
    "not JSON": ({}, "KEY", "{nope"),
    "NaN": ({}, "KEY", '{"customer_id": NaN}'),
    "a list": ({}, "KEY", "[1]"),
    "missing customer": ({"feature": "api_calls"}, "KEY", None),
    "usage as a string": ({"requested_usage": "5"}, "KEY", None),
    "usage as true": ({"requested_usage": True}, "KEY", None),
    "usage as 5.0": ({"requested_usage": 5.0}, "KEY", None),
    "negative usage": ({"requested_usage": -1}, "KEY", None),
    "feature not a slug": ({"feature": "api calls"}, "KEY", None),
    "feature too long": ({"feature": "x" * 65}, "KEY", None),
    "not a customer id": ({"customer_id": "cus_" + "0" * 33}, "KEY", None),
    "customer id padded": ({"customer_id": " cust_" + "0" * 31 + " "}, "KEY", None),
    "consume without a key": ({"consume": True, "requested_usage": 1}, "KEY", None),
    "an extra field": ({"colour": "blue"}, "KEY", None),
}


@pytest.mark.parametrize("case", list(BAD))
def test_every_bad_request_gets_the_same_error_from_both_paths(
    settings, customers, service_key, case
):
    customer, _other = customers
    change, key, raw = BAD[case]
    body = {**question(customer), **change}
    key = service_key if key == "KEY" else key
    lean, slow = both_paths(settings, body, key=key, raw=raw)
    answer = same(lean, slow)
    assert answer.status_code in (200, 400, 401), answer.content
    if answer.status_code != 200:
        assert set(answer.json()) == {"error"} and answer.json()["error"]["code"]
    if case == "an extra field":  # ignored by the serializer, so by both
        assert answer.status_code == 200


def test_a_form_body_and_a_get_are_refused_the_same(settings, customers, service_key):
    lean, slow = both_paths(
        settings, "customer_id=x", key=service_key, content_type="application/x-www-form-urlencoded"
    )
    assert same(lean, slow).status_code == 415
    client = FrontDoor(HTTP_AUTHORIZATION=f"Bearer {service_key}")
    assert client.get(CHECK).status_code == 405


def test_the_fast_checks_accept_only_the_fields_the_serializer_knows():
    from licensing.api.serializers import CheckAccessRequest

    assert set(CheckAccessRequest().fields) - {"idempotency_key"} == FIELDS


def test_one_query_per_check_with_a_remembered_key(customers, service_key):
    customer, _other = customers
    client = FrontDoor(HTTP_AUTHORIZATION=f"Bearer {service_key}")
    plan(customer, "pro")
    usage_record(customer=customer, feature="api_calls", quantity=3, idempotency_key="q")
    with CaptureQueriesContext(connection) as first:
        ask(client, question(customer))
    with CaptureQueriesContext(connection) as queries:
        response = ask(client, question(customer, requested_usage=1))
    assert response.status_code == 200 and response.json()["usage"]["used"] == 3
    assert response.lean
    # The first also looked up the key (and read the catalog's limits into memory).
    assert any("licensing_serviceapikey" in q["sql"] for q in first)
    assert len(queries) == 1, [q["sql"] for q in queries]


def test_a_refusal_is_not_logged_as_an_error(customers, service_key, caplog):
    customer, _other = customers
    client = FrontDoor(HTTP_AUTHORIZATION=f"Bearer {service_key}")
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert ask(client, question(customer, "sso")).status_code == 403
        consume = question(customer, "sso", consume=True, requested_usage=1,
                           idempotency_key="k")  # fmt: skip
        assert ask(client, consume).status_code in (400, 403)  # the DRF view's answer
    assert [r for r in caplog.records if r.name == "django.request" and "Forbidden" in r.msg] == []


def test_a_key_revoked_in_the_admin_is_refused_at_once(customers, admin_user, rf):
    customer, _other = customers
    record, key = service_key_create(name="revoked soon")
    client = FrontDoor(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert ask(client, question(customer)).status_code == 200  # now remembered
    request = rf.post("/")
    request.user = admin_user
    request._messages = type("M", (), {"add": lambda *a, **k: None})()
    with pytest.MonkeyPatch.context() as patch:
        # on_commit runs at once outside a test transaction; here it must be called.
        patch.setattr("django.db.transaction.on_commit", lambda f: f())
        site._registry[ServiceAPIKey].revoke(request, ServiceAPIKey.objects.filter(pk=record.pk))
    response = ask(client, question(customer))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_key_revoked_elsewhere_is_refused_within_the_cache_lifetime(customers, monkeypatch):
    customer, _other = customers
    record, key = service_key_create(name="revoked by another instance")
    client = FrontDoor(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert ask(client, question(customer)).status_code == 200
    ServiceAPIKey.objects.filter(pk=record.pk).update(revoked_at=timezone.now())

    assert ask(client, question(customer)).status_code == 200  # still remembered here
    digest = authentication.key_hash(key)
    key_id, name, seen = authentication._service_keys[digest]
    expired = seen - authentication.SERVICE_KEY_CACHE_SECONDS - 1
    monkeypatch.setitem(authentication._service_keys, digest, (key_id, name, expired))
    assert ask(client, question(customer)).status_code == 401


def test_plan_standing_and_catalog_changes_show_in_the_next_answer(
    customers, service_key, django_capture_on_commit_callbacks
):
    customer, _other = customers
    client = FrontDoor(HTTP_AUTHORIZATION=f"Bearer {service_key}")
    assert ask(client, question(customer, "sso")).json()["reason"] == "feature_not_in_plan"
    plan(customer, "pro")  # a plan change
    assert ask(client, question(customer, "sso")).json()["reason"] == "ok"
    plan(customer, "pro", CustomerPlan.Status.PAST_DUE, past_due_since=timezone.now())
    assert ask(client, question(customer, "sso")).json()["warning"] == "payment_past_due"
    CustomerPlan.objects.filter(customer=customer).update(
        past_due_since=timezone.now() - timedelta(days=30)
    )  # a standing change
    assert ask(client, question(customer, "sso")).json()["reason"] == "past_due"

    plan(customer, "pro")
    big = question(customer, requested_usage=2_000_000)
    assert ask(client, big).json()["reason"] == "usage_limit_exceeded"
    catalog = catalog_read()
    raised = tuple(
        replace(p, features=tuple(
            replace(f, limit=5_000_000) if f.feature == "api_calls" else f for f in p.features
        )) if p.code == "pro" else p
        for p in catalog.plans
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        # A catalog change, as stripe_setup makes it.
        catalog_load(catalog=replace(catalog, plans=raised))
    assert PlanFeature.objects.get(plan__code="pro", feature__key="api_calls").limit == 5_000_000
    answer = ask(client, big).json()
    assert (answer["reason"], answer["usage"]["limit"]) == ("ok", 5_000_000)


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_went_stale_is_replaced_and_the_question_answered(
    customers, service_key, monkeypatch
):
    from django.db import OperationalError

    from licensing.api import fast

    customer, _other = customers
    calls = []
    real = fast.check_access

    def first_fails(**question):
        calls.append(question)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**question)

    monkeypatch.setattr(fast, "check_access", first_fails)
    response = ask(FrontDoor(HTTP_AUTHORIZATION=f"Bearer {service_key}"), question(customer))
    assert response.status_code == 200
    assert len(calls) == 2


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2027, 5, 14, 9, 30, tzinfo=UTC),
        datetime(2028, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2027, 5, 14, 11, 30, tzinfo=timezone.get_fixed_timezone(120)),
    ],
)
def test_times_are_written_as_the_apis_datetime_field_writes_them(moment):
    from licensing.api.views import DATETIME, iso_time

    assert iso_time(moment) == DATETIME.to_representation(moment)
    with timezone.override("Europe/Paris"):
        assert iso_time(moment) == DATETIME.to_representation(moment)


def test_the_wsgi_application_servers_run_has_the_lean_path_in_front():
    # In a new process: importing billing_portal.wsgi sets Django up (logging included).
    code = (
        "from billing_portal.wsgi import application, django_application\n"
        "from licensing.api.fast import CheckAccessFrontDoor\n"
        "assert type(application) is CheckAccessFrontDoor\n"
        "assert application.application is django_application\n"
        "print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_django_still_decides_the_host_the_https_redirect_and_the_security_headers(
    settings, customers, service_key
):
    customer, _other = customers
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["billing.example.com"]
    door = FrontDoor(fresh=True, HTTP_AUTHORIZATION=f"Bearer {service_key}")
    host = {"HTTP_HOST": "billing.example.com"}

    plain = door.post(CHECK, question(customer), **host)
    assert (plain.status_code, plain.lean) == (301, False)
    assert plain["Location"] == "https://billing.example.com" + CHECK

    https = {**host, "HTTP_X_FORWARDED_PROTO": "https"}
    for _ in range(2):  # the second from what the first remembered
        answer = door.post(CHECK, question(customer), **https)
        assert (answer.status_code, answer.lean) == (200, True)
        assert answer["Strict-Transport-Security"] == "max-age=3600"
        assert answer["X-Content-Type-Options"] == "nosniff"
        assert answer["Referrer-Policy"] == "same-origin"
        assert answer["Content-Length"] == str(len(answer.content))

    for _ in range(2):
        refused = door.post(CHECK, question(customer), HTTP_HOST="evil.example",
                            HTTP_X_FORWARDED_PROTO="https")  # fmt: skip
        assert (refused.status_code, refused.lean) == (400, False)
