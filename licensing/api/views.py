"""The API other services call (check-access, usage) and the customer's own (/me)."""

from datetime import datetime

from django.contrib.auth import login
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import fields, permissions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Customer
from accounts.selectors import CURRENT_ACCOUNT_SESSION_KEY, current_membership
from licensing import services
from licensing.consumption import ConsumeKeyReused, FeatureNotConsumable, usage_consume
from licensing.entitlements import Decision, check_access, customer_standing, usage_period
from licensing.models import License, PlanFeature, UsageTotal
from licensing.selectors import usage_not_billed_reason
from licensing.spend import spend_caps_check

from . import serializers
from .authentication import IdentityTokenAuthentication, ServiceKeyAuthentication
from .errors import error_response, field_error, invalid_request
from .parsers import JSONParser

MAX_BATCH = 1000
DATETIME = fields.DateTimeField()  # the API's one way of writing times
ERRORS = {
    400: OpenApiResponse(serializers.ErrorResponse, description="Bad input, a code per field"),
    401: OpenApiResponse(serializers.ErrorResponse, description="No valid credentials"),
}


class IsAuthenticatedCaller(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.auth is not None or bool(request.user and request.user.is_authenticated)


class ServiceAPIView(APIView):
    authentication_classes = [ServiceKeyAuthentication]
    permission_classes = [IsAuthenticatedCaller]
    # JSON only: a form's values are all strings, and the API's types are strict.
    parser_classes = [JSONParser]


class CheckAccessView(ServiceAPIView):
    @extend_schema(
        request=serializers.CheckAccessRequest,
        responses={
            200: serializers.CheckAccessResponse,
            403: OpenApiResponse(
                serializers.CheckAccessResponse, description="Refused: see reason"
            ),
            409: OpenApiResponse(
                serializers.ErrorResponse,
                description="consume: the idempotency key names another request",
            ),
            **ERRORS,
        },
        summary="May this customer use this feature (for this much more)?",
        description=(
            "Read-only by default. With `consume: true` and an `idempotency_key`, the "
            "requested usage is recorded if, and only if, access is granted, atomically: "
            "concurrent callers never push usage past the limit, and a repeat of the key "
            "answers as the first call did. A granted consume's `usage.used` includes it."
        ),
    )
    def post(self, request):
        query = serializers.CheckAccessRequest(data=request.data)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        if not data["consume"]:
            decision = check_access(
                customer_id=data["customer_id"],
                feature=data["feature"],
                requested_usage=data["requested_usage"],
            )
            return decision_response(decision)
        try:
            decision, _first = usage_consume(
                customer_id=data["customer_id"],
                feature=data["feature"],
                quantity=data["requested_usage"],
                idempotency_key=data["idempotency_key"],
            )
        except ConsumeKeyReused:
            code = "idempotency_key_reused"
            message = (
                f"The idempotency key {data['idempotency_key']!r} already names another "
                "request or usage report; use a new key for a new use."
            )
            return error_response(code, message, 409, field_error("idempotency_key", code, message))
        except FeatureNotConsumable:
            message = f"{data['feature']} is not reported as usage: there is nothing to consume."
            return invalid_request(field_error("feature", "feature_not_metered", message))
        return decision_response(decision)


def decision_response(decision: Decision) -> Response:
    """check-access's answer: 200 when granted, 403 with the reason when not. A refusal
    is an answer, not an error: Django does not log it as a "Forbidden" warning."""
    response = Response(decision_body(decision), status=200 if decision.has_access else 403)
    response._has_been_logged = True
    return response


def iso_time(value: datetime) -> str:
    """A time as DATETIME writes it (ISO 8601 in the current time zone, UTC as Z), at a
    tenth of the cost: check-access writes up to two per answer."""
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def decision_body(decision: Decision) -> dict:
    usage = None
    if decision.limit is not None or decision.used is not None:
        usage = {
            "used": decision.used,
            "limit": decision.limit,
            "remaining": decision.remaining,
            "resets_at": decision.resets_at and iso_time(decision.resets_at),
        }
    soft = None
    if decision.soft_limit is not None:
        soft = {"limit": decision.soft_limit, "exceeded": decision.soft_limit_exceeded}
    # The shape of serializers.CheckAccessResponse, built directly: this is the hot path.
    return {
        "has_access": decision.has_access,
        "reason": decision.reason,
        "plan": decision.plan,
        "usage": usage,
        "soft_limit": soft,
        "grace_ends_at": decision.grace_ends_at and iso_time(decision.grace_ends_at),
        "warning": decision.warning,
    }


class UsageView(ServiceAPIView):
    @extend_schema(
        request=serializers.UsageRequest,
        responses={
            201: serializers.UsageRecorded,
            404: OpenApiResponse(serializers.ErrorResponse, description="Unknown customer"),
            409: OpenApiResponse(
                serializers.ErrorResponse,
                description="The idempotency key was used for a different report",
            ),
            **ERRORS,
        },
        summary="Report usage, once per idempotency key; a list reports a batch.",
        description=(
            "A timestamp may lie from the start of the feature's previous period to five "
            "minutes from now. Repeating a key with the same report answers the first record; "
            "with anything else, 409 `idempotency_key_reused`. A batch is recorded whole or "
            "not at all, and its errors are keyed by the item's index."
        ),
    )
    def post(self, request):
        batch = isinstance(request.data, list)

        def at(index: int, fields: dict) -> dict:
            return {str(index): fields} if batch else fields

        if batch:
            if not 1 <= len(request.data) <= MAX_BATCH:
                return error_response(
                    "invalid_batch", f"A batch holds 1 to {MAX_BATCH} reports.", 400
                )
            incoming = serializers.UsageRequest(data=request.data, many=True)
        else:
            incoming = serializers.UsageRequest(data=request.data)
        incoming.is_valid(raise_exception=True)
        reports = incoming.validated_data if batch else [incoming.validated_data]

        first_with_key, repeated = {}, {}
        for index, report in enumerate(reports):
            key = report["idempotency_key"]
            if key in first_with_key:
                message = f"Item {first_with_key[key]} has the same idempotency key."
                repeated.update(
                    at(index, field_error("idempotency_key", "duplicate_in_batch", message))
                )
            first_with_key.setdefault(key, index)
        if repeated:
            return invalid_request(repeated)

        customers = Customer.objects.in_bulk({r["customer_id"] for r in reports})
        for index, report in enumerate(reports):
            if report["customer_id"] not in customers:
                where = f"item {index}: " if batch else ""
                return error_response(
                    "customer_not_found", f"{where}no customer {report['customer_id']}.", 404
                )
        recorded = []  # on an error, the failing item's index is len(recorded)
        try:
            with transaction.atomic():  # a batch is recorded whole or not at all
                for report in reports:
                    event, _created = services.usage_record(
                        customer=customers[report["customer_id"]],
                        feature=report["feature"],
                        quantity=report["quantity"],
                        idempotency_key=report["idempotency_key"],
                        occurred_at=report.get("timestamp"),
                    )
                    recorded.append(event)
        except (services.UnknownFeature, services.FeatureNotMetered) as error:
            code = (
                "unknown_feature"
                if isinstance(error, services.UnknownFeature)
                else "feature_not_metered"
            )
            message = f"No metered feature {error}."
            return invalid_request(at(len(recorded), field_error("feature", code, message)))
        except services.UsageTimestampOutOfRange as error:
            if error.too_early:
                code = "too_old"
                message = (
                    f"Usage may be reported from {DATETIME.to_representation(error.earliest)} "
                    "on: the start of the feature's previous period (for a feature that never "
                    "resets, the account's start)."
                )
            else:
                code = "in_the_future"
                message = (
                    "Usage may be reported up to five minutes ahead of our clock, until "
                    f"{DATETIME.to_representation(error.latest)}."
                )
            return invalid_request(at(len(recorded), field_error("timestamp", code, message)))
        except services.IdempotencyKeyReused as error:
            first = error.first
            message = (
                f"The idempotency key {first.idempotency_key!r} already names another report "
                f"({first.customer_id}, {first.feature.key}, quantity {first.quantity}, at "
                f"{DATETIME.to_representation(first.occurred_at)}); use a new key for a new "
                "report."
            )
            code = "idempotency_key_reused"
            fields = at(len(recorded), field_error("idempotency_key", code, message))
            return error_response(code, message, 409, fields)
        for customer_id in {event.customer_id for event in recorded}:
            spend_caps_check(customer_id=customer_id)  # alerts once a threshold is reached
        reasons = {
            (event.customer_id, event.feature.key): usage_not_billed_reason(
                customer=customers[event.customer_id], feature=event.feature.key
            )
            for event in recorded
        }
        body = [
            {
                "id": event.pk,
                "customer_id": event.customer_id,
                "feature": event.feature.key,
                "quantity": event.quantity,
                "idempotency_key": event.idempotency_key,
                "occurred_at": event.occurred_at,
                "period_start": event.period_start,
                "billed": reasons[(event.customer_id, event.feature.key)] is None,
                "not_billed_reason": reasons[(event.customer_id, event.feature.key)],
            }
            for event in recorded
        ]
        data = serializers.UsageRecorded(body, many=True).data
        return Response(data if batch else data[0], status=status.HTTP_201_CREATED)


class RevokedLicensesView(APIView):
    """Public: license ids revoked before they expired, for offline verifiers."""

    authentication_classes: list = []

    @extend_schema(
        summary="License ids revoked before their expiry",
        responses={200: serializers.RevokedLicenses},
    )
    def get(self, request):
        revoked = License.objects.filter(
            revoked_at__isnull=False, expires_at__gt=timezone.now()
        ).values_list("jti", flat=True)
        return Response({"revoked": [str(jti) for jti in revoked]})


class MeView(APIView):
    """The signed-in customer's account, plan, usage and license."""

    # The token scheme first: its WWW-Authenticate header makes refusals 401s, not 403s.
    authentication_classes = [IdentityTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticatedCaller]

    @extend_schema(
        summary="The caller's own account, plan, usage and license",
        responses={
            200: serializers.Me,
            404: OpenApiResponse(serializers.ErrorResponse, description="No customer account"),
            401: ERRORS[401],
        },
    )
    def get(self, request):
        membership = current_membership(request)
        if membership is None:
            return error_response("no_customer", "You belong to no customer account.", 404)
        customer = Customer.objects.select_related("plan__plan").get(pk=membership.customer_id)
        standing = customer_standing(customer)
        now = timezone.now()
        usage = []
        for limits in PlanFeature.objects.select_related("feature").filter(
            plan__code=standing.plan_code, feature__kind="metered"
        ):
            start, resets_at = usage_period(standing, limits.reset, now)
            used = (
                UsageTotal.objects.filter(
                    customer=customer, feature=limits.feature, period_start=start
                )
                .values_list("used", flat=True)
                .first()
                or 0
            )
            usage.append(
                {
                    "feature": limits.feature.key,
                    "used": used,
                    "limit": limits.limit,
                    "resets_at": resets_at,
                }
            )
        current = License.objects.filter(customer=customer, revoked_at__isnull=True).first()
        return Response(
            {
                "account": {
                    "customer_id": customer.customer_id,
                    "name": customer.name,
                    "role": membership.role,
                    "trial_ends_at": customer.trial_ends_at,
                },
                "plan": {"code": standing.plan_code, "status": standing.status},
                "usage": usage,
                "license": current
                and {
                    "jti": str(current.jti),
                    "expires_at": current.expires_at,
                    "token": current.token,
                },
            }
        )


class MeSessionView(APIView):
    """Sign in to the portal's pages with an identity token: the session then works in the
    account the token's organization maps to, else the person's own. Only a bearer token
    signs in here, which a form on another site cannot send, so no CSRF token is needed."""

    authentication_classes = [IdentityTokenAuthentication]
    permission_classes = [IsAuthenticatedCaller]

    @extend_schema(
        summary="Open a portal session from an identity-provider token",
        request=None,
        responses={200: serializers.MeSession, 401: ERRORS[401]},
    )
    def post(self, request):
        login(request._request, request.user, backend="django.contrib.auth.backends.ModelBackend")
        membership = current_membership(request)
        if membership is not None:
            request.session[CURRENT_ACCOUNT_SESSION_KEY] = membership.customer_id
        return Response({"customer_id": membership.customer_id if membership else None})
