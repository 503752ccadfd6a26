"""Endpoints the business registers, the events the portal emitted to them, and every
delivery attempt: events and attempts only grow."""

import secrets
import uuid

from django.core.exceptions import ValidationError
from django.db import models

from accounts.models import Customer

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


class EventType(models.TextChoices):
    ENTITLEMENTS_CHANGED = "customer.entitlements_changed", "Entitlements changed"
    LICENSE_ISSUED = "license.issued", "License issued"
    INVOICE_FINALIZED = "invoice.finalized", "Invoice finalized"
    PAYMENT_FAILED = "payment.failed", "Payment failed"
    PAYMENT_RECOVERED = "payment.recovered", "Payment recovered"
    SPEND_CAP_CROSSED = "spend_cap.crossed", "Spend cap threshold crossed"
    CUSTOMER_SUSPENDED = "customer.suspended", "Customer suspended"


class Endpoint(models.Model):
    url = models.URLField(
        max_length=2000, help_text="Where events are POSTed (HTTPS in production)."
    )
    description = models.CharField(max_length=200, blank=True, help_text="Which service it is.")
    secret = models.CharField(
        max_length=100,
        default=new_secret,
        editable=False,
        help_text="Signs every delivery (HMAC-SHA256); the receiver verifies with it.",
    )
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text='Event types to send, e.g. ["license.issued"]; empty: every type.',
    )
    is_active = models.BooleanField(default=True, help_text="Unticked: nothing new is sent.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = "outgoing webhook endpoint"

    def __str__(self) -> str:
        return self.description or self.url

    def clean(self) -> None:
        super().clean()
        types = self.event_types
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise ValidationError(
                {"event_types": 'A list of event types, like ["license.issued"].'}
            )
        if unknown := sorted(set(types) - set(EventType.values)):
            raise ValidationError({"event_types": f"Unknown event types: {', '.join(unknown)}."})

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class Event(models.Model):
    """One event the portal emitted, as it was sent (append-only)."""

    event_id = models.CharField(max_length=40, primary_key=True, default=new_event_id)
    type = models.CharField(max_length=64, choices=EventType.choices, db_index=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="outgoing_events")
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "outgoing webhook event"

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


class Delivery(models.Model):
    """One event to one endpoint: attempted until it succeeds or a day has passed."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (retrying)"
        SUCCEEDED = "succeeded", "Delivered"
        GAVE_UP = "gave_up", "Gave up after a day"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="outgoing_delivery_once"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint} ({self.status})"


class Attempt(models.Model):
    """One POST of a delivery and what came of it (append-only): the delivery log."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, help_text="Timeout, refused, …")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
