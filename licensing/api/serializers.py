"""Input and output shapes of the API. They validate; services and selectors decide."""

from rest_framework import serializers

from accounts.models import CUSTOMER_ID_PREFIX


class CustomerIdField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=37, min_length=37, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.startswith(CUSTOMER_ID_PREFIX):
            raise serializers.ValidationError("Not a customer id (cust_…).", code="invalid")
        return value


class CheckAccessRequest(serializers.Serializer):
    customer_id = CustomerIdField()
    feature = serializers.SlugField(max_length=64)
    requested_usage = serializers.IntegerField(min_value=0, default=0, required=False)


class Usage(serializers.Serializer):
    used = serializers.IntegerField(allow_null=True)
    limit = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField(allow_null=True)
    resets_at = serializers.DateTimeField(allow_null=True)


class SoftLimit(serializers.Serializer):
    limit = serializers.IntegerField()
    exceeded = serializers.BooleanField()


class CheckAccessResponse(serializers.Serializer):
    has_access = serializers.BooleanField()
    reason = serializers.CharField()
    plan = serializers.CharField(allow_null=True)
    usage = Usage(allow_null=True)
    soft_limit = SoftLimit(allow_null=True)


class UsageRequest(serializers.Serializer):
    customer_id = CustomerIdField()
    feature = serializers.SlugField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=10**12)
    idempotency_key = serializers.CharField(min_length=1, max_length=255)
    timestamp = serializers.DateTimeField(required=False)


class UsageRecorded(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.CharField()
    feature = serializers.CharField()
    quantity = serializers.IntegerField()
    idempotency_key = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    period_start = serializers.DateTimeField()


class ErrorBody(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(required=False)


class ErrorResponse(serializers.Serializer):
    error = ErrorBody()


class RevokedLicenses(serializers.Serializer):
    revoked = serializers.ListField(child=serializers.UUIDField())


class MeAccount(serializers.Serializer):
    customer_id = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    trial_ends_at = serializers.DateTimeField()


class MePlan(serializers.Serializer):
    code = serializers.CharField(allow_null=True)
    status = serializers.CharField()


class MeUsage(serializers.Serializer):
    feature = serializers.CharField()
    used = serializers.IntegerField()
    limit = serializers.IntegerField(allow_null=True)
    resets_at = serializers.DateTimeField(allow_null=True)


class MeLicense(serializers.Serializer):
    jti = serializers.UUIDField()
    expires_at = serializers.DateTimeField()
    token = serializers.CharField()


class Me(serializers.Serializer):
    account = MeAccount()
    plan = MePlan()
    usage = MeUsage(many=True)
    license = MeLicense(allow_null=True)
