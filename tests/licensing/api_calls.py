"""Requests the service API tests send: a JSON post, and one usage report's body."""

import functools
import json
import uuid
from datetime import timedelta

from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from licensing.api.fast import CheckAccessFrontDoor
from licensing.models import CustomerPlan, Plan

CHECK = reverse("api_check_access")
USAGE = reverse("api_usage")


def post(api, url, body):
    return api.post(url, body, content_type="application/json")


def usage(customer_id, feature="api_calls", quantity=1, key=None, **extra):
    return {
        "customer_id": customer_id,
        "feature": feature,
        "quantity": quantity,
        "idempotency_key": key or uuid.uuid4().hex,
        **extra,
    }


def on_plan(customer, code="pro", status=CustomerPlan.Status.ACTIVE):
    """The customer on `code` as the projection would write it, 3 days into a 30-day
    period; the plan row."""
    now = timezone.now()
    return CustomerPlan.objects.update_or_create(
        customer=customer,
        defaults={
            "plan": Plan.objects.get(code=code),
            "status": status,
            "current_period_start": now - timedelta(days=3),
            "current_period_end": now + timedelta(days=27),
            "subscription_id": "sub_test",
        },
    )[0]


class Answer:
    """What the WSGI application answered, read like a test client's response."""

    def __init__(self, status: str, headers: list[tuple[str, str]], content: bytes, lean: bool):
        self.status_code = int(status.split(" ", 1)[0])
        self.headers = dict(headers)
        self.content = content
        self.lean = lean  # answered by check-access's lean path, in front of Django

    def __getitem__(self, name: str) -> str:
        return {k.lower(): v for k, v in self.headers.items()}[name.lower()]

    def json(self):
        return json.loads(self.content)


@functools.cache
def _application():
    """The WSGI application as billing_portal.wsgi builds it (importing that module would
    set Django up again, and with it the logging the tests capture)."""
    return CheckAccessFrontDoor(WSGIHandler())


class FrontDoor:
    """Asks through the WSGI application the server runs, so that check-access's lean
    path answers what it answers in production; Django's test client starts below it, at
    Django's handler."""

    def __init__(self, *, fresh: bool = False, **defaults):
        # fresh: a new application, which reads the settings a test has changed.
        self.application = CheckAccessFrontDoor(WSGIHandler()) if fresh else _application()
        self.defaults = defaults

    def request(self, method: str, path: str, data=None, content_type=None, **extra) -> Answer:
        application = self.application
        factory = RequestFactory(**self.defaults)
        if method == "GET":
            request = factory.get(path, **extra)
        else:
            request = factory.generic(method, path, _encode(data, content_type),
                                      content_type=content_type, **extra)  # fmt: skip
        started = {}

        def start_response(status, headers, exc_info=None):
            started.update(status=status, headers=headers)

        # As Django's test client does: the test's transaction keeps the connection open.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            chunks = application(request.environ, start_response)
            try:
                content = b"".join(chunks)
            finally:
                getattr(chunks, "close", lambda: None)()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        # The lean path answers with a list of bytes, Django with its response object.
        return Answer(started["status"], started["headers"], content, type(chunks) is list)

    def post(self, path, data=None, content_type="application/json", **extra) -> Answer:
        return self.request("POST", path, data, content_type, **extra)

    def get(self, path, **extra) -> Answer:
        return self.request("GET", path, **extra)


def _encode(data, content_type) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return json.dumps(data).encode() if content_type == "application/json" else b""
