from django.apps import AppConfig


class OutgoingConfig(AppConfig):
    """Signed webhooks to the business's own services (entitlements changed, license issued,
    invoice finalized, …): every app emits through `outgoing.services`; it imports only
    accounts."""

    name = "outgoing"
    verbose_name = "Outgoing webhooks"
