"""Every error of the API is its JSON envelope with a code, never an HTML page or a bare 500:
what Django and DRF refuse before our code runs as much as what our code refuses."""

import json
import logging

import pytest
from django.http import HttpResponse, HttpResponseServerError
from django.test import RequestFactory

from licensing.api.middleware import api_errors_as_json
from licensing.models import UsageEvent
from tests.licensing.api_calls import CHECK, USAGE, FrontDoor, post, usage


def error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


@pytest.fixture
def customer(membership, other_membership, catalog):
    return membership.customer


@pytest.mark.parametrize("url", [USAGE, CHECK])
def test_json_nested_1000_deep_is_a_400(api, customer, url):
    body = '{"customer_id": ' + "[" * 1000 + "]" * 1000 + "}"
    assert error(post(api, url, body), 400)["code"] == "nesting_too_deep"
    assert error(post(api, url, "[" * 1000 + "]" * 1000), 400)["code"] == "nesting_too_deep"
    assert not UsageEvent.objects.exists()


def test_nesting_deeper_than_any_request_of_ours_is_refused_too(api, customer):
    nested = usage(customer.customer_id)
    for _ in range(8):
        nested = {"wrapped": nested}
    assert error(post(api, USAGE, nested), 400)["code"] == "nesting_too_deep"
    batch = [usage(customer.customer_id, extra=[[[[[[{"deep": 1}]]]]]])]
    assert error(post(api, USAGE, batch), 400)["code"] == "nesting_too_deep"
    assert not UsageEvent.objects.exists()


def test_a_body_over_the_limit_is_413_in_the_envelope(api, customer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    batch = [usage(customer.customer_id) for _ in range(30)]
    assert len(json.dumps(batch)) > 2_000
    body = error(post(api, USAGE, batch), 413)
    assert body["code"] == "request_too_large"
    assert "2000 bytes" in body["message"]
    assert not UsageEvent.objects.exists()
    # Just under the limit is read as usual.
    assert post(api, USAGE, batch[:10]).status_code == 201


def test_a_body_over_the_default_limit_is_413(api, customer):
    body = json.dumps([usage(customer.customer_id, padding="x" * 3_000_000)])
    assert error(post(api, USAGE, body), 413)["code"] == "request_too_large"


@pytest.mark.parametrize("body", ["{bad", "[1,", '{"quantity": NaN}', "1" * 5000])
def test_unparseable_json_is_a_400(api, customer, body):
    assert error(post(api, USAGE, body), 400)["code"] == "parse_error"


def test_only_json_is_read(api, customer):
    form = api.post(USAGE, usage(customer.customer_id))  # multipart, every value a string
    assert error(form, 415)["code"] == "unsupported_media_type"
    text = api.post(USAGE, "quantity=1", content_type="text/plain")
    assert error(text, 415)["code"] == "unsupported_media_type"
    assert not UsageEvent.objects.exists()


def test_a_wrong_method_is_405_with_allow(api, customer):
    response = api.get(USAGE)
    assert error(response, 405)["code"] == "method_not_allowed"
    assert "POST" in response["Allow"]


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/", "/api/v1/usage/extra"])
def test_an_unknown_api_path_is_a_json_404(api, path):
    assert error(api.get(path), 404)["code"] == "not_found"
    assert error(api.post(path, "{}", content_type="application/json"), 404)["code"] == (
        "not_found"
    )


def test_pages_outside_the_api_keep_their_html_404(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["licensing.api.views", "licensing.api.fast"])
def test_an_unhandled_error_in_the_api_is_a_logged_json_500(
    api, customer, monkeypatch, caplog, path, settings
):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    # check-access's lean path (which answers this plain check in front of Django, in the
    # WSGI application) and the DRF view alike.
    if path == "licensing.api.fast":
        api = FrontDoor(HTTP_AUTHORIZATION=api.defaults["HTTP_AUTHORIZATION"])
    monkeypatch.setattr(f"{path}.check_access", broken)
    with caplog.at_level(logging.ERROR, logger="licensing.api.errors"):
        response = post(api, CHECK, {"customer_id": customer.customer_id, "feature": "sso"})
    body = error(response, 500)
    assert body["code"] == "internal_error"
    assert "a bug" not in body["message"]  # nothing of our insides is shown
    assert any(record.exc_info and "a bug" in str(record.exc_info[1]) for record in caplog.records)


def test_errors_django_answers_itself_on_api_paths_become_the_envelope():
    factory = RequestFactory()
    html_500 = api_errors_as_json(lambda request: HttpResponseServerError("<h1>Oops</h1>"))
    response = html_500(factory.post("/api/v1/usage"))
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "internal_error"
    # Outside the API, and for answers that are fine, nothing changes.
    assert html_500(factory.get("/billing/")).content == b"<h1>Oops</h1>"
    ok = api_errors_as_json(lambda request: HttpResponse("<p>docs</p>"))
    assert ok(factory.get("/api/docs/")).content == b"<p>docs</p>"
