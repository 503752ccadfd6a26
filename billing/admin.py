"""Support staff's view of billing: a customer's Stripe link, cards and timeline, read-only
(the timeline is append-only, and cards change through the customer or Stripe)."""

from django.contrib import admin

from accounts.admin import CustomerAdmin as AccountsCustomerAdmin
from accounts.models import Customer
from audit.admin import EntryInline, ReadOnlyAdminMixin
from licensing.services import customer_trial_set

from . import events
from .mirror_admin import djstripe_admin_read_only
from .models import (
    BillingInfo,
    CustomerBilling,
    EventReconcile,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    StripeEvent,
)


class CustomerBillingInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = CustomerBilling
    fields = ["billing_info", "created_at"]
    readonly_fields = fields
    verbose_name_plural = "Stripe customer"


admin.site.unregister(Customer)


@admin.register(Customer)
class CustomerAdmin(AccountsCustomerAdmin):
    inlines = [*AccountsCustomerAdmin.inlines, CustomerBillingInline, EntryInline]
    search_fields = [*AccountsCustomerAdmin.search_fields, "billing__billing_info__stripe_id"]

    def save_model(self, request, obj, form, change):
        trial_ends_at = form.cleaned_data.get("trial_ends_at")
        if change and "trial_ends_at" in form.changed_data:
            # Through the service: the license and the trial reminder follow the new end.
            obj.trial_ends_at = form.initial["trial_ends_at"]
            super().save_model(request, obj, form, change)
            customer_trial_set(customer=obj, trial_ends_at=trial_ends_at, actor=request.user)
            return
        super().save_model(request, obj, form, change)


class PaymentMethodInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PaymentMethod
    fields = ["order", "stripe_id", "created_at"]
    readonly_fields = fields
    extra = 0


@admin.register(BillingInfo)
class BillingInfoAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["stripe_id", "created_at"]
    search_fields = ["stripe_id", "customer_links__customer__customer_id"]
    inlines = [PaymentMethodInline]


class InvoiceLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = InvoiceLine
    fields = ["key", "description", "quantity", "unit_amount", "per", "amount",
              "stripe_invoice_item_id", "synced_quantity", "synced_amount",
              "synced_at"]  # fmt: skip
    readonly_fields = fields
    extra = 0


class DriftFilter(admin.SimpleListFilter):
    """The invoices whose last drift check found Stripe's figure differing from ours: a
    renewal held for that is waiting for staff."""

    title = "drift"
    parameter_name = "drift"

    def lookups(self, request, model_admin):
        return [("yes", "Stripe differs from our ledger")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(drift_stripe_amount__isnull=False)
        return queryset


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Our invoices: computed from the ledgers, never edited by hand."""

    list_display = ["customer", "period_start", "period_end", "status", "number", "synced_at",
                    "drift_ledger_amount", "drift_stripe_amount"]  # fmt: skip
    list_filter = ["status", DriftFilter]
    search_fields = ["customer__customer_id", "number", "stripe_invoice_id"]
    list_select_related = ["customer"]
    inlines = [InvoiceLineInline]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every Stripe event received or recovered, and how its processing went: a failed one
    shows its error here, and is retried by its task and by the reconcile."""

    list_display = [
        "event_id",
        "type",
        "object_id",
        "status",
        "attempts",
        "source",
        "stripe_created",
    ]
    list_filter = ["status", "source", "type"]
    search_fields = ["event_id", "object_id"]
    date_hierarchy = "stripe_created"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "reconcile": events.reconcile_status()}
        return super().changelist_view(request, extra_context)


@admin.register(EventReconcile)
class EventReconcileAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The passes of the reconcile over Stripe's events list: where its cursor stands, how
    far behind now it is, and how many events each pass repaired."""

    list_display = ["started_at", "finished_at", "cursor", "lag", "listed", "repaired", "error"]

    @admin.display(description="lag behind now")
    def lag(self, run: EventReconcile):
        if run.cursor is None:
            return "-"
        return str((run.finished_at or run.started_at) - run.cursor).split(".")[0]


# dj-stripe registered its admin before ours (it comes first in INSTALLED_APPS).
djstripe_admin_read_only(admin.site)
