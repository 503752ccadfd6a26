"""The catalog and customers' plans, for support staff to look at. The catalog comes from
catalog.toml (`manage.py stripe_setup` loads it); plans follow Stripe: both read-only."""

from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone

from audit.admin import ReadOnlyAdminMixin
from billing_portal.money import money_format

from .api.authentication import (
    SERVICE_KEY_CACHE_SECONDS,
    service_key_cache_clear,
    service_key_create,
)
from .models import (
    CustomerPlan,
    Feature,
    License,
    Plan,
    PlanFeature,
    ResourceEvent,
    ServiceAPIKey,
    SpendCap,
    SpendCapCrossing,
)
from .spend import spend_cap_set
from .tasks import license_email_send


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


class PlanFeatureInline(admin.TabularInline):
    model = PlanFeature
    fields = ["feature", "limit", "reset", "soft_limit", "included", "unit_amount", "per"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Plan)
class PlanAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "price", "lookup_key", "trial_allowed", "is_active"]
    list_filter = ["is_active"]
    inlines = [PlanFeatureInline]

    @admin.display(description="Monthly price")
    def price(self, plan: Plan) -> str:
        if plan.amount is None:
            return "not sold"
        return money_format(plan.amount, plan.currency)


@admin.register(Feature)
class FeatureAdmin(ReadOnlyAdmin):
    list_display = ["key", "name", "kind", "unit", "held", "is_active"]


@admin.register(ResourceEvent)
class ResourceEventAdmin(ReadOnlyAdmin):
    """The resource ledger: what each customer attached and detached, and when."""

    list_display = ["occurred_at", "customer", "feature", "resource_id", "action"]
    list_filter = ["action", "feature"]
    search_fields = ["customer__customer_id", "resource_id", "idempotency_key"]
    list_select_related = ["customer", "feature"]


@admin.register(CustomerPlan)
class CustomerPlanAdmin(ReadOnlyAdmin):
    list_display = ["customer", "plan", "status", "current_period_end", "cancel_at_period_end"]
    list_filter = ["status", "plan", "cancel_at_period_end"]
    search_fields = ["customer__customer_id", "customer__memberships__user__email",
                     "subscription_id"]  # fmt: skip
    list_select_related = ["customer", "plan"]


@admin.register(License)
class LicenseAdmin(ReadOnlyAdmin):
    list_display = ["jti", "customer", "plan_code", "status", "issued_at", "expires_at",
                    "revoked_at"]  # fmt: skip
    list_filter = ["status", "plan_code"]
    search_fields = ["jti", "customer__customer_id", "customer__memberships__user__email"]
    list_select_related = ["customer"]
    actions = ["resend"]

    @admin.action(description="Email the license again to the account's billing contacts")
    def resend(self, request, queryset):
        current = queryset.filter(revoked_at__isnull=True)
        for issued in current:
            license_email_send.delay(jti=str(issued.jti))
        skipped = queryset.count() - current.count()
        self.message_user(
            request,
            f"Queued {current.count()} license(s) to be sent again"
            + (f"; {skipped} revoked one(s) left out." if skipped else "."),
        )


@admin.register(ServiceAPIKey)
class ServiceAPIKeyAdmin(admin.ModelAdmin):
    """Keys are shown once, when made; only their hash is kept."""

    list_display = ["name", "prefix", "created_at", "revoked_at"]
    fields = ["name"]
    actions = ["revoke"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        record, key = service_key_create(name=obj.name)
        obj.pk = record.pk
        messages.warning(request, f"The key for {record.name!r}, shown only now: {key}")

    @admin.action(description="Revoke: the key stops working within 30 seconds")
    def revoke(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        # At once here; other processes forget the key within SERVICE_KEY_CACHE_SECONDS.
        transaction.on_commit(service_key_cache_clear)
        self.message_user(
            request,
            f"Revoked {revoked} key(s): refused at once by this server and within "
            f"{SERVICE_KEY_CACHE_SECONDS} seconds by every other.",
        )


class SpendCapCrossingInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SpendCapCrossing
    fields = ["threshold", "period_start", "spend", "crossed_at"]
    readonly_fields = fields
    extra = 0


@admin.register(SpendCap)
class SpendCapAdmin(admin.ModelAdmin):
    """Staff set a customer's caps as the customer would (the support page has no form of
    its own yet): saved through spend_cap_set, so a cap acts and alerts at once."""

    list_display = ["customer", "feature", "amount", "thresholds", "mode", "updated_at"]
    list_filter = ["mode"]
    search_fields = ["customer__customer_id"]
    raw_id_fields = ["customer"]
    inlines = [SpendCapCrossingInline]

    def save_model(self, request, obj, form, change):
        saved = spend_cap_set(
            customer=obj.customer, feature=obj.feature.key if obj.feature_id else None,
            amount=obj.amount, thresholds=[int(t) for t in obj.thresholds], mode=obj.mode,
        )  # fmt: skip
        obj.pk = saved.pk
