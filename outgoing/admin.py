"""Endpoints are the business's to register and edit; events and the delivery log are
read-only (they only grow)."""

from django import forms
from django.contrib import admin

from audit.admin import ReadOnlyAdminMixin

from .models import Attempt, Delivery, Endpoint, Event


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = Endpoint
        fields = ["url", "description", "event_types", "is_active"]


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ["url", "description", "event_types", "is_active", "created_at"]
    list_filter = ["is_active"]
    fields = ["url", "description", "event_types", "is_active", "secret", "created_at"]
    readonly_fields = ["secret", "created_at"]


class AttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Attempt
    fields = ["number", "attempted_at", "status_code", "error", "duration_ms"]
    readonly_fields = fields
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["event", "endpoint", "status", "attempts", "next_attempt_at", "delivered_at"]
    list_filter = ["status", "endpoint"]
    search_fields = ["event__event_id", "event__customer__customer_id", "event__type"]
    list_select_related = ["event", "endpoint"]
    inlines = [AttemptInline]


class DeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Delivery
    fields = ["endpoint", "status", "attempts", "next_attempt_at", "delivered_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["event_id", "type", "customer", "created_at"]
    list_filter = ["type"]
    search_fields = ["event_id", "customer__customer_id"]
    list_select_related = ["customer"]
    inlines = [DeliveryInline]
