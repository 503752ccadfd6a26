"""Every API error has one shape: {"error": {"code", "message", "fields"?}}, with a code per
field for bad input, so callers can act on codes instead of parsing messages. Errors Django
answers itself on /api/ paths are rewritten into it by `.middleware`."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)

API_PATH_PREFIX = "/api/"
# What a status means when nothing more specific said it (Django's own error pages).
STATUS_CODES = {
    400: ("bad_request", "The request could not be understood."),
    403: ("permission_denied", "You may not do this."),
    404: ("not_found", "There is no such API endpoint."),
    405: ("method_not_allowed", "This endpoint does not accept that method."),
    413: ("request_too_large", "The request body is too large."),
    500: ("internal_error", "Something went wrong on our side; it has been logged."),
}


def error_body(code: str, message: str, fields=None) -> dict:
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def error_response(code: str, message: str, http_status: int, fields=None) -> Response:
    return Response(error_body(code, message, fields), status=http_status)


def field_error(field: str, code: str, message: str) -> dict:
    return {field: [{"code": code, "message": message}]}


def invalid_request(fields: dict) -> Response:
    return error_response(
        "invalid_request", "Some fields are missing or wrong; see `fields`.", 400, fields
    )


def _fields(detail, codes) -> dict:
    """DRF's nested error detail as {field: [{code, message}]} (lists keep their index)."""
    if isinstance(detail, dict):
        return {key: _fields(detail[key], codes[key]) for key in detail}
    if isinstance(detail, list) and detail and isinstance(detail[0], dict | list):
        return {str(i): _fields(d, c) for i, (d, c) in enumerate(zip(detail, codes, strict=True))
                if d}  # fmt: skip
    if isinstance(detail, list):
        return [{"code": c, "message": str(d)} for d, c in zip(detail, codes, strict=True)]
    return [{"code": codes, "message": str(detail)}]


def _too_large() -> Response:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_response(
        "request_too_large", f"The request body is over the limit of {limit} bytes.", 413
    )


def exception_handler(exc, context):
    if isinstance(exc, exceptions.ValidationError):
        return invalid_request(_fields(exc.detail, exc.get_codes()))
    if isinstance(exc, RequestDataTooBig):  # raised while DRF reads the body
        return _too_large()
    response = drf_exception_handler(exc, context)
    if response is None:
        # Not ours to explain: log it whole, and answer in the envelope, not an HTML page.
        logger.error("Unhandled error in the API", exc_info=exc)
        set_rollback()
        code, message = STATUS_CODES[500]
        return error_response(code, message, status.HTTP_500_INTERNAL_SERVER_ERROR)
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    code = codes if isinstance(codes, str) else "error"
    message = str(exc.detail) if isinstance(exc, exceptions.APIException) else str(exc)
    response.data = error_body(code, message)
    return response
