"""Support staff read the ledger; nobody edits it here."""

from django.contrib import admin

from .models import Entry


class ReadOnlyAdminMixin:
    """For ledgers and mirrors of other sources: shown, never edited here. Every app's
    admin uses it (audit is the app all others may import)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Entry
    fk_name = "customer"
    fields = ["created_at", "sentence", "kind", "source", "actor", "data"]
    readonly_fields = fields
    extra = 0
    ordering = ["-created_at", "-id"]
    verbose_name_plural = "audit ledger"


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "customer", "sentence", "kind", "source", "actor"]
    list_filter = ["source", "kind"]
    search_fields = ["customer__customer_id", "customer__memberships__user__email", "kind"]
    list_select_related = ["customer", "actor"]
    date_hierarchy = "created_at"
