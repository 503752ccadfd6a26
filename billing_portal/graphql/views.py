"""/api/graphql/: who is calling (a service key reads every customer; a customer's session
or identity token only the accounts its user belongs to), then strawberry runs the query.
GraphiQL is served only with DEBUG."""

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from strawberry.django.views import GraphQLView

from accounts.models import Customer
from accounts.selectors import current_membership
from licensing.api.authentication import ServiceKeyOrIdentityTokenAuthentication
from licensing.models import ServiceAPIKey


@dataclass
class Context:
    request: HttpRequest
    response: HttpResponse
    readable_customers: object  # a Customer queryset
    viewer_id: str | None  # the caller's own account; None for a service

    def __getitem__(self, key):
        return getattr(self, key)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status=status
    )


def _csrf_refused(request) -> bool:
    """Session cookies ride along with any site's request: a cookie-authenticated POST
    needs Django's CSRF token, as a form would. Bearer tokens do not ride along."""
    check = CsrfViewMiddleware(lambda r: None)
    check.process_request(request)
    return check.process_view(request, None, (), {}) is not None


@method_decorator(csrf_exempt, name="dispatch")
class PortalGraphQLView(GraphQLView):
    allow_queries_via_get = True

    def dispatch(self, request, *args, **kwargs):
        self.graphql_ide = "graphiql" if settings.DEBUG else None
        try:
            found = ServiceKeyOrIdentityTokenAuthentication().authenticate(request)
        except exceptions.AuthenticationFailed as error:
            return _error(401, str(error.get_codes()), str(error.detail))
        request.graphql_caller = found[1] if found else None  # a service key or a token
        if found is not None:
            request.graphql_user = found[0]
        elif request.user.is_authenticated:
            request.graphql_user = request.user
        else:
            if (
                request.method == "GET"
                and self.graphql_ide
                and "text/html" in request.headers.get("Accept", "")
            ):
                return super().dispatch(request, *args, **kwargs)  # the IDE page itself
            return _error(401, "not_authenticated", "Send a service key or identity token.")
        if found is None and request.method == "POST" and _csrf_refused(request):
            return _error(403, "csrf_failed", "A session needs the CSRF token (X-CSRFToken).")
        return super().dispatch(request, *args, **kwargs)

    def get_context(self, request, response):
        if isinstance(request.graphql_caller, ServiceAPIKey):
            return Context(request, response, Customer.objects.all(), None)
        user = request.graphql_user
        membership = current_membership(request, user=user, auth=request.graphql_caller)
        return Context(
            request,
            response,
            Customer.objects.for_user(user),
            membership.customer_id if membership else None,
        )
