"""Errors on /api/ paths that Django answers itself, before or around DRF (no such URL, an
exception outside a DRF view), in the API's envelope instead of an HTML page."""

from django.http import JsonResponse

from .errors import API_PATH_PREFIX, STATUS_CODES, error_body


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def api_errors_as_json(get_response):
    """An error response on an /api/ path that is not JSON becomes the envelope, keeping
    the status and the headers a client acts on."""

    def middleware(request):
        response = get_response(request)
        if (
            request.path.startswith(API_PATH_PREFIX)
            and response.status_code >= 400
            and not _is_json(response)
        ):
            code, message = STATUS_CODES.get(response.status_code, ("error", "The request failed."))
            replaced = JsonResponse(error_body(code, message), status=response.status_code)
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response

    return middleware
