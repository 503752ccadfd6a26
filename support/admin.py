"""The admin, tidied for support staff: what they need first on the index (customers, the
support search, invoices, webhook deliveries), every customer one click from their support
page, and no mutation that the support page does not audit. Loaded after every other
app's admin (support comes last in INSTALLED_APPS), so it re-registers their ModelAdmins.

What stays editable is the operator's, not a customer's: staff accounts, groups and
service API keys, for superusers only."""

from django.contrib import admin
from django.contrib.auth.models import Group
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin import MembershipAdmin as AccountsMembershipAdmin
from accounts.admin import MembershipInline
from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.models import Customer, Membership, User
from audit.admin import ReadOnlyAdminMixin
from billing.admin import CustomerAdmin as BillingCustomerAdmin
from billing.admin import StripeEventAdmin as BillingStripeEventAdmin
from billing.models import StripeEvent
from licensing.admin import LicenseAdmin as LicensingLicenseAdmin
from licensing.admin import ServiceAPIKeyAdmin as LicensingServiceAPIKeyAdmin
from licensing.admin import SpendCapAdmin as LicensingSpendCapAdmin
from licensing.models import License, ServiceAPIKey, SpendCap

from . import permissions
from .models import Erasure


def support_link(customer_id: str) -> str:
    return format_html(
        '<a href="{}" class="support-link">Support page</a>',
        reverse("support:customer", kwargs={"customer_id": customer_id}),
    )


class ReadOnlyMembershipInline(ReadOnlyAdminMixin, MembershipInline):
    fields = ["user", "customer", "role", "created_at"]
    readonly_fields = fields
    autocomplete_fields: list[str] = []


class CustomerAdmin(ReadOnlyAdminMixin, BillingCustomerAdmin):
    """Read-only here: support changes an account from its support page, one audited
    action at a time (the trial, the plan, a suspension…)."""

    list_display = [*BillingCustomerAdmin.list_display, "support"]
    search_fields = [*BillingCustomerAdmin.search_fields, "invoices__number"]
    readonly_fields = ["support", *BillingCustomerAdmin.fields, "suspended_at"]
    fields = ["support", *BillingCustomerAdmin.fields, "suspended_at"]

    def get_inlines(self, request, obj):
        return [
            ReadOnlyMembershipInline if inline is MembershipInline else inline
            for inline in super().get_inlines(request, obj)
        ]

    @admin.display(description="Support")
    def support(self, obj: Customer) -> str:
        return support_link(obj.pk)


class MembershipAdmin(ReadOnlyAdminMixin, AccountsMembershipAdmin):
    autocomplete_fields: list[str] = []


class OperatorOnlyMixin:
    """Changed by superusers only; shown to support staff who may view."""

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return super().get_actions(request) if request.user.is_superuser else {}


class UserAdmin(OperatorOnlyMixin, AccountsUserAdmin):
    """Superusers manage staff accounts here; a customer's user is read-only for everyone
    (erasure is the support page's, and a customer changes their own email and password)."""

    inlines = [ReadOnlyMembershipInline]

    def has_change_permission(self, request, obj=None):
        if obj is not None and not obj.is_staff:
            return False
        return super().has_change_permission(request, obj)


class GroupAdmin(OperatorOnlyMixin, type(admin.site._registry[Group])):
    pass


class LicenseAdmin(LicensingLicenseAdmin):
    # Sending a license again is the support page's audited action.
    actions: list[str] = []


class ServiceAPIKeyAdmin(OperatorOnlyMixin, LicensingServiceAPIKeyAdmin):
    @admin.action(description=LicensingServiceAPIKeyAdmin.revoke.short_description)
    def revoke(self, request, queryset):
        # Recorded in the admin's log, as its add and change pages are: keys are no
        # customer's, so the audit ledger (per customer) is not where they go.
        for key in queryset.filter(revoked_at__isnull=True):
            self.log_change(request, key, [{"changed": {"fields": ["revoked_at"]}}])
        super().revoke(request, queryset)


class SpendCapAdmin(ReadOnlyAdminMixin, LicensingSpendCapAdmin):
    """Read-only here: staff set a customer's cap from the support page (an audited action
    with a reason), the customer on their usage page."""


class StripeEventAdmin(BillingStripeEventAdmin):
    """The webhook log, filtered by customer when searched for a cust_ id: the events about
    that customer's Stripe objects (its Stripe customer, subscription, cards, invoices)."""

    search_help_text = "An event or object id, or a customer's cust_ id for its events."

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.startswith("cust_"):
            from .selectors import customer_stripe_ids

            return queryset.filter(object_id__in=customer_stripe_ids(customer_id=term)), False
        return super().get_search_results(request, queryset, search_term)


def _read_only_hidden(model_admin: type[admin.ModelAdmin]) -> type:
    """For what support does not need (django-axes' sign-in logs): read-only, and listed on
    the index for superusers only."""

    class Hidden(ReadOnlyAdminMixin, model_admin):
        def get_actions(self, request):
            return {}

        def get_model_perms(self, request):
            if request.user.is_superuser:
                return super().get_model_perms(request)
            return dict.fromkeys(("add", "change", "delete", "view"), False)

    Hidden.__name__ = model_admin.__name__
    return Hidden


def _replace(model, model_admin) -> None:
    admin.site.unregister(model)
    admin.site.register(model, model_admin)


_replace(Customer, CustomerAdmin)
_replace(Membership, MembershipAdmin)
_replace(User, UserAdmin)
_replace(Group, GroupAdmin)
_replace(License, LicenseAdmin)
_replace(ServiceAPIKey, ServiceAPIKeyAdmin)
_replace(StripeEvent, StripeEventAdmin)
_replace(SpendCap, SpendCapAdmin)
for _model, _model_admin in list(admin.site._registry.items()):
    if _model._meta.app_label == "axes":
        _replace(_model, _read_only_hidden(type(_model_admin)))


# The index, in the order support works: customers, then invoices and webhook deliveries.
APP_ORDER = ["accounts", "billing", "audit", "licensing", "support", "auth", "axes"]
MODEL_ORDER = {
    "accounts": ["Customer", "User", "Membership"],
    "billing": ["Invoice", "StripeEvent"],
}
_get_app_list = admin.site.get_app_list


def get_app_list(request, app_label=None):
    apps = _get_app_list(request, app_label)

    def app_key(app):
        label = app["app_label"]
        return (APP_ORDER.index(label) if label in APP_ORDER else len(APP_ORDER), app["name"])

    for app in apps:
        first = MODEL_ORDER.get(app["app_label"], [])
        app["models"].sort(
            key=lambda m: (first.index(m["object_name"]) if m["object_name"] in first else 99,
                           m["name"])
        )  # fmt: skip
    return sorted(apps, key=app_key)


admin.site.get_app_list = get_app_list


def index_context(request) -> dict:
    return {"support_search": permissions.can_view(request.user)}


_each_context = admin.site.each_context


def each_context(request):
    return {**_each_context(request), **index_context(request)}


admin.site.each_context = each_context


def password_change(request, extra_context=None):
    """Staff change their password as everyone does, through the emailed reset link: the
    admin's own form is a mutation nothing would record."""
    return redirect("password_reset")


admin.site.password_change = password_change


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The erasures done, ids only; `manage.py erasures_reapply` applies them again."""

    list_display = ["customer_id", "erased_at", "staff_id"]
    search_fields = ["customer_id"]
