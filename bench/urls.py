"""The portal's URLs and a no-op view, to measure the server itself beside check-access."""

from django.http import HttpResponse
from django.urls import include, path


def noop(request):
    return HttpResponse(b"{}", content_type="application/json")


urlpatterns = [
    path("bench/noop", noop),
    path("", include("billing_portal.urls")),
]
