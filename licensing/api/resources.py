"""Attach and detach billable resources (features marked `held`), as the business's
services report them: idempotent per key like usage intake, with the same error shape."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.models import Customer
from licensing import resources, services
from licensing.models import ResourceEvent
from licensing.selectors import usage_not_billed_reason

from .errors import error_response, field_error, invalid_request
from .serializers import (
    CustomerIdField,
    ErrorResponse,
    StrictCharField,
    StrictDateTimeField,
    StrictSlugField,
)
from .views import DATETIME, ERRORS, ServiceAPIView


class ResourceRequest(serializers.Serializer):
    customer_id = CustomerIdField()
    feature = StrictSlugField(max_length=64)
    resource_id = StrictCharField(min_length=1, max_length=255)
    idempotency_key = StrictCharField(min_length=1, max_length=255)
    timestamp = StrictDateTimeField(required=False, help_text="When; default now.")


class ResourceRecorded(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.CharField()
    feature = serializers.CharField()
    resource_id = serializers.CharField()
    action = serializers.ChoiceField(choices=ResourceEvent.Action.choices)
    idempotency_key = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    billed = serializers.BooleanField(
        help_text="Whether the time held lands on the customer's current invoice."
    )
    not_billed_reason = serializers.CharField(
        allow_null=True,
        help_text="no_paid_plan (counted toward limits, billed nowhere) or included_in_plan.",
    )


class ResourceView(ServiceAPIView):
    action: str = ""

    def post(self, request):
        incoming = ResourceRequest(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        customer = Customer.objects.filter(pk=data["customer_id"]).first()
        if customer is None:
            return error_response("customer_not_found", f"No customer {data['customer_id']}.", 404)
        try:
            event, _created = resources.resource_record(
                customer=customer,
                feature=data["feature"],
                resource_id=data["resource_id"],
                action=self.action,
                idempotency_key=data["idempotency_key"],
                occurred_at=data.get("timestamp"),
            )
        except services.UnknownFeature as error:
            message = f"No metered feature {error}."
            return invalid_request(field_error("feature", "unknown_feature", message))
        except resources.FeatureNotHeld as error:
            message = f"{error} is not a resource held over time; report its use instead."
            return invalid_request(field_error("feature", "feature_not_held", message))
        except resources.TimestampInFuture as error:
            message = (
                "Resources may be reported up to five minutes ahead of our clock, until "
                f"{DATETIME.to_representation(error.latest)}."
            )
            return invalid_request(field_error("timestamp", "in_the_future", message))
        except resources.ResourceConflict as error:
            fields = (
                field_error("idempotency_key", error.code, str(error))
                if error.code == "idempotency_key_reused"
                else None
            )
            return error_response(error.code, str(error), status.HTTP_409_CONFLICT, fields)
        reason = usage_not_billed_reason(customer=customer, feature=event.feature.key)
        body = {
            "id": event.pk,
            "customer_id": event.customer_id,
            "feature": event.feature.key,
            "resource_id": event.resource_id,
            "action": event.action,
            "idempotency_key": event.idempotency_key,
            "occurred_at": event.occurred_at,
            "billed": reason is None,
            "not_billed_reason": reason,
        }
        return Response(ResourceRecorded(body).data, status=status.HTTP_201_CREATED)


RESPONSES = {
    201: ResourceRecorded,
    404: OpenApiResponse(ErrorResponse, description="Unknown customer"),
    409: OpenApiResponse(
        ErrorResponse,
        description="resource_already_attached, resource_not_attached, out_of_order "
        "(before the resource's last change), or idempotency_key_reused",
    ),
    **ERRORS,
}


class ResourceAttachView(ResourceView):
    action = ResourceEvent.Action.ATTACH

    @extend_schema(
        request=ResourceRequest,
        responses=RESPONSES,
        summary="Attach a billable resource, once per idempotency key",
    )
    def post(self, request):
        return super().post(request)


class ResourceDetachView(ResourceView):
    action = ResourceEvent.Action.DETACH

    @extend_schema(
        request=ResourceRequest,
        responses=RESPONSES,
        summary="Detach a billable resource, once per idempotency key",
    )
    def post(self, request):
        return super().post(request)
