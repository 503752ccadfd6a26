"""Personal data stays at Stripe: what dj-stripe's mirror and its webhook log keep is
redacted of names, emails, phones, addresses and payment-method billing details before it
is written. Brand, last 4 and expiry of cards stay; ids stay, so everything still joins up.

Connected to dj-stripe's models in BillingConfig.ready(). The billing details page reads
the real values live from Stripe.
"""

import json
from typing import Any

from django.db.models.signals import post_save, pre_save

REDACTED = None

# Per Stripe object type, the keys that hold personal data.
PERSONAL_FIELDS: dict[str, frozenset[str]] = {
    "customer": frozenset(
        {"name", "email", "phone", "address", "shipping", "description", "individual_name",
         "business_name"}
    ),
    "payment_method": frozenset({"billing_details"}),
    "card": frozenset(
        {"name", "address_line1", "address_line2", "address_city", "address_state",
         "address_zip", "address_country"}
    ),
    "charge": frozenset({"billing_details", "receipt_email", "shipping"}),
    "payment_intent": frozenset({"receipt_email", "shipping"}),
    "invoice": frozenset(
        {"customer_name", "customer_email", "customer_phone", "customer_address",
         "customer_shipping", "customer_tax_ids"}
    ),
    "checkout.session": frozenset(
        {"customer_details", "customer_email", "collected_information", "shipping_details"}
    ),
    "tax_id": frozenset({"value", "verification"}),
}  # fmt: skip


def redact(value: Any, object_type: str | None = None) -> Any:
    """A copy of a Stripe JSON value with the personal fields of every object in it nulled.

    `object_type` types a dict that carries no `object` key, such as an event's
    `previous_attributes` (which hold the old name or address of a changed customer)."""
    if isinstance(value, list):
        return [redact(item) for item in value]
    if not isinstance(value, dict):
        return value
    # `object` names the type, except in an event's `data`, where it holds the object.
    kind = value.get("object") if isinstance(value.get("object"), str) else object_type
    personal = PERSONAL_FIELDS.get(kind, frozenset())
    redacted = {}
    for key, item in value.items():
        if key in personal and item not in (None, "", [], {}):
            redacted[key] = REDACTED
        elif kind == "event" and key == "data" and isinstance(item, dict):
            redacted[key] = redact_event_data(item)
        else:
            redacted[key] = redact(item)
    return redacted


def redact_event_data(data: dict) -> dict:
    inner = data.get("object")
    object_type = inner.get("object") if isinstance(inner, dict) else None
    redacted = redact(data)
    if isinstance(data.get("previous_attributes"), dict):
        redacted["previous_attributes"] = redact(data["previous_attributes"], object_type)
    return redacted


def redact_json_text(text: str) -> str:
    try:
        return json.dumps(redact(json.loads(text)))
    except ValueError:
        return ""  # not JSON: nothing of it is worth keeping


def _redact_mirror_row(sender, instance, **kwargs) -> None:
    if isinstance(getattr(instance, "stripe_data", None), dict):
        instance.stripe_data = redact(instance.stripe_data)
    if sender.__name__ == "Event" and isinstance(instance.data, dict):
        instance.data = redact_event_data(instance.data)
    if sender.__name__ == "Customer":
        instance.email = ""


def _redact_trigger_body(sender, instance, **kwargs) -> None:
    # dj-stripe verifies the signature over the raw body after the first save, so the raw
    # text stays on the instance and only the redacted text goes to the database.
    instance._raw_body = instance.body
    instance.body = redact_json_text(instance.body)


def _restore_trigger_body(sender, instance, **kwargs) -> None:
    instance.body = instance._raw_body


def connect() -> None:
    from django.apps import apps
    from djstripe.models import WebhookEventTrigger
    from djstripe.models.base import StripeModel

    for model in apps.get_app_config("djstripe").get_models():
        if issubclass(model, StripeModel):
            pre_save.connect(_redact_mirror_row, sender=model, dispatch_uid=f"redact-{model}")
    pre_save.connect(_redact_trigger_body, sender=WebhookEventTrigger, dispatch_uid="redact-wh")
    post_save.connect(_restore_trigger_body, sender=WebhookEventTrigger, dispatch_uid="restore")
