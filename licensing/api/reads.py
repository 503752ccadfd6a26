"""Read-only views of one customer for the business's services (a service key reads every
customer) and for the customer itself (its session or identity token reads only the accounts
its user belongs to; any other id is 404, as if it did not exist)."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from licensing.entitlements import customer_standing
from licensing.selectors import customers_entitlements

from .authentication import ServiceKeyOrIdentityTokenAuthentication, readable_customers
from .errors import error_response
from .serializers import CheckAccessResponse, ErrorResponse
from .views import ERRORS, IsAuthenticatedCaller, decision_body

NOT_FOUND = OpenApiResponse(ErrorResponse, description="No such customer (or not yours)")


class CustomerPlanOut(serializers.Serializer):
    code = serializers.CharField(allow_null=True, help_text="trial during the free trial.")
    status = serializers.CharField(help_text="trialing, active, past_due, canceled, expired.")
    current_period_start = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    grace_ends_at = serializers.DateTimeField(allow_null=True)


class CustomerOut(serializers.Serializer):
    customer_id = serializers.CharField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    trial_ends_at = serializers.DateTimeField()
    plan = CustomerPlanOut()


class FeatureEntitlementOut(CheckAccessResponse):
    feature = serializers.CharField()
    kind = serializers.ChoiceField(choices=["boolean", "metered"])


class UsageOut(serializers.Serializer):
    feature = serializers.CharField()
    used = serializers.IntegerField()
    limit = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField(allow_null=True)
    period_start = serializers.DateTimeField()
    resets_at = serializers.DateTimeField(allow_null=True)


def customer_body(customer, now) -> dict:
    standing = customer_standing(customer, now)
    try:
        paid = customer.plan
    except customer.__class__.plan.RelatedObjectDoesNotExist:
        paid = None
    return {
        "customer_id": customer.customer_id,
        "name": customer.name,
        "created_at": customer.created_at,
        "trial_ends_at": customer.trial_ends_at,
        "plan": {
            "code": standing.plan_code,
            "status": standing.status,
            "current_period_start": paid.current_period_start if paid else None,
            "current_period_end": paid.current_period_end if paid else None,
            "cancel_at_period_end": bool(paid and paid.cancel_at_period_end),
            "grace_ends_at": standing.grace_ends_at,
        },
    }


class CustomerReadView(APIView):
    # The token schemes first: their WWW-Authenticate header makes refusals 401s, not 403s.
    authentication_classes = [ServiceKeyOrIdentityTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticatedCaller]

    def customer(self, customer_id: str):
        return (
            readable_customers(self.request)
            .select_related("plan__plan")
            .filter(customer_id=customer_id)
            .first()
        )

    def not_found(self, customer_id: str) -> Response:
        return error_response("customer_not_found", f"No customer {customer_id}.", 404)


class CustomerView(CustomerReadView):
    @extend_schema(
        summary="A customer: account, plan and status",
        responses={200: CustomerOut, 404: NOT_FOUND, 401: ERRORS[401]},
    )
    def get(self, request, customer_id):
        customer = self.customer(customer_id)
        if customer is None:
            return self.not_found(customer_id)
        return Response(CustomerOut(customer_body(customer, timezone.now())).data)


class CustomerEntitlementsView(CustomerReadView):
    @extend_schema(
        summary="Every feature's check-access decision for the customer now",
        description="The same fields and reason codes as check-access (nothing requested), "
        "one entry per feature of the catalog.",
        responses={200: FeatureEntitlementOut(many=True), 404: NOT_FOUND, 401: ERRORS[401]},
    )
    def get(self, request, customer_id):
        customer = self.customer(customer_id)
        if customer is None:
            return self.not_found(customer_id)
        entitlements = customers_entitlements(customers=[customer], now=timezone.now())
        return Response(
            [
                {"feature": e.feature, "kind": e.kind, **decision_body(e.decision)}
                for e in entitlements[customer.customer_id]
            ]
        )


class CustomerUsageView(CustomerReadView):
    @extend_schema(
        summary="Use of each metered feature in its current period",
        responses={200: UsageOut(many=True), 404: NOT_FOUND, 401: ERRORS[401]},
    )
    def get(self, request, customer_id):
        customer = self.customer(customer_id)
        if customer is None:
            return self.not_found(customer_id)
        entitlements = customers_entitlements(customers=[customer], now=timezone.now())
        usage = [
            {
                "feature": e.feature,
                "used": e.decision.used,
                "limit": e.decision.limit,
                "remaining": e.decision.remaining,
                "period_start": e.decision.period_start,
                "resets_at": e.decision.resets_at,
            }
            for e in entitlements[customer.customer_id]
            if e.decision.used is not None
        ]
        return Response(UsageOut(usage, many=True).data)
