"""The catalog and customers' plans, for support staff to look at. The catalog comes from
catalog.toml (`manage.py stripe_setup` loads it); plans follow Stripe: both read-only."""

from django.contrib import admin

from .models import CustomerPlan, Feature, Plan, PlanFeature


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PlanFeatureInline(admin.TabularInline):
    model = PlanFeature
    fields = ["feature", "limit", "reset", "soft_limit"]
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
        return f"{plan.amount / 100:.2f} {plan.currency.upper()}"


@admin.register(Feature)
class FeatureAdmin(ReadOnlyAdmin):
    list_display = ["key", "name", "kind", "unit", "is_active"]


@admin.register(CustomerPlan)
class CustomerPlanAdmin(ReadOnlyAdmin):
    list_display = ["customer", "plan", "status", "current_period_end", "cancel_at_period_end"]
    list_filter = ["status", "plan", "cancel_at_period_end"]
    search_fields = ["customer__customer_id", "customer__memberships__user__email",
                     "subscription_id"]  # fmt: skip
    list_select_related = ["customer", "plan"]
