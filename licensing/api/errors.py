"""Every API error has one shape: {"error": {"code", "message", "fields"?}}, with a code per
field for bad input, so callers can act on codes instead of parsing messages."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def error_response(code: str, message: str, http_status: int, fields=None) -> Response:
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return Response({"error": body}, status=http_status)


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


def exception_handler(exc, context):
    if isinstance(exc, exceptions.ValidationError):
        return error_response(
            "invalid_request",
            "Some fields are missing or wrong; see `fields`.",
            status.HTTP_400_BAD_REQUEST,
            _fields(exc.detail, exc.get_codes()),
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    code = codes if isinstance(codes, str) else "error"
    message = str(exc.detail) if isinstance(exc, exceptions.APIException) else str(exc)
    response.data = {"error": {"code": code, "message": message}}
    return response
