"""The license page and the public keys that verify licenses."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from accounts.selectors import current_membership

from .licenses import jwks
from .models import License


def _current_license(request) -> License | None:
    membership = current_membership(request)
    if membership is None:
        return None
    return License.objects.filter(customer=membership.customer, revoked_at__isnull=True).first()


@login_required
def license_page(request):
    return render(request, "licensing/license.html", {"license": _current_license(request)})


@login_required
def license_download(request):
    current = _current_license(request)
    if current is None:
        raise Http404("No license yet")
    response = HttpResponse(current.token, content_type="application/jwt")
    response["Content-Disposition"] = f'attachment; filename="license-{current.customer_id}.jwt"'
    return response


@require_GET
@cache_control(public=True, max_age=300)
def jwks_view(request):
    return JsonResponse(jwks())
