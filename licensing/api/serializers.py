"""Input and output shapes of the API. They validate; services and selectors decide."""

from rest_framework import serializers

from accounts.models import CUSTOMER_ID_PREFIX

# The most one report (or one consume) may count.
MAX_QUANTITY = 10**12


class JSONStringOnly:
    """JSON strings and nothing else: DRF's CharField would take 5 as "5"."""

    type_message = "Must be a JSON string."

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(self.type_message, code="invalid")
        return super().to_internal_value(data)


class StrictCharField(JSONStringOnly, serializers.CharField):
    pass


class StrictSlugField(JSONStringOnly, serializers.SlugField):
    pass


class StrictDateTimeField(JSONStringOnly, serializers.DateTimeField):
    type_message = "Must be an ISO 8601 string, like 2026-01-31T12:00:00Z."


class StrictIntegerField(serializers.IntegerField):
    """JSON integers and nothing else: DRF's IntegerField would take "5", 5.0 and true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError(
                'Must be a JSON integer, like 5 (not "5" or 5.0).', code="invalid"
            )
        return data


class CustomerIdField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=37, min_length=37, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.startswith(CUSTOMER_ID_PREFIX):
            raise serializers.ValidationError("Not a customer id (cust_…).", code="invalid")
        return value


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false and nothing else: DRF's BooleanField would take "yes" and 1."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise serializers.ValidationError("Must be a JSON boolean.", code="invalid")
        return data


class CheckAccessRequest(serializers.Serializer):
    customer_id = CustomerIdField()
    feature = StrictSlugField(max_length=64)
    requested_usage = StrictIntegerField(min_value=0, default=0, required=False)
    consume = StrictBooleanField(
        default=False,
        required=False,
        help_text="Record `requested_usage` as used if, and only if, access is granted, "
        "atomically: concurrent callers never push usage past the limit.",
    )
    idempotency_key = StrictCharField(
        min_length=1,
        max_length=255,
        required=False,
        help_text="Required with `consume`: a repeat of the key answers as the first call.",
    )

    def validate(self, data):
        if data.get("consume"):
            if "idempotency_key" not in data:
                raise serializers.ValidationError(
                    {"idempotency_key": "Required with consume: true (a retry counts once)."},
                    code="required_for_consume",
                )
            if not 1 <= data.get("requested_usage", 0) <= MAX_QUANTITY:
                raise serializers.ValidationError(
                    {"requested_usage": f"With consume: true, 1 to {MAX_QUANTITY}."},
                    code="required_for_consume",
                )
        return data


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
    grace_ends_at = serializers.DateTimeField(
        allow_null=True, help_text="Past due: the plan's features end then (access until)."
    )
    warning = serializers.ChoiceField(
        choices=["payment_past_due"], allow_null=True, help_text="Access granted, but act."
    )


class UsageRequest(serializers.Serializer):
    customer_id = CustomerIdField()
    feature = StrictSlugField(max_length=64)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY)
    idempotency_key = StrictCharField(min_length=1, max_length=255)
    timestamp = StrictDateTimeField(required=False)


class UsageRecorded(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.CharField()
    feature = serializers.CharField()
    quantity = serializers.IntegerField()
    idempotency_key = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    period_start = serializers.DateTimeField()
    billed = serializers.BooleanField(
        help_text="Whether this use lands on the customer's current invoice."
    )
    not_billed_reason = serializers.CharField(
        allow_null=True,
        help_text="no_paid_plan (counted toward limits, billed nowhere) or included_in_plan.",
    )


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


class MeSession(serializers.Serializer):
    customer_id = serializers.CharField(
        allow_null=True, help_text="The account the session works in; null: none."
    )
