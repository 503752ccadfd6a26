"""Requests the service API tests send: a JSON post, and one usage report's body."""

import uuid

from django.urls import reverse

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
