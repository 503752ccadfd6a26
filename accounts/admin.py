"""Support staff's view of users and customer accounts: find by email or by cust_ id."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.contrib.auth.forms import UserCreationForm as DjangoUserCreationForm

from .models import Customer, IdentityOrganization, Invitation, Membership, User


class UserCreationForm(DjangoUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeForm(DjangoUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user", "customer"]


class IdentityOrganizationInline(admin.TabularInline):
    """Link the identity provider's organization ids to this account (OIDC_ORG_CLAIM)."""

    model = IdentityOrganization
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "memberships__customer__customer_id"]
    readonly_fields = ["date_joined", "last_login", "email_verified_at"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined", "email_verified_at"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]}),
    ]
    inlines = [MembershipInline]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["customer_id", "name", "owner_email", "trial_ends_at", "created_at"]
    search_fields = ["customer_id", "name", "memberships__user__email"]
    readonly_fields = ["customer_id", "created_at"]
    fields = ["customer_id", "name", "trial_ends_at", "created_at"]
    date_hierarchy = "created_at"
    inlines = [MembershipInline, IdentityOrganizationInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("memberships__user")

    @admin.display(description="Owner")
    def owner_email(self, obj: Customer) -> str:
        owners = [m.user.email for m in obj.memberships.all() if m.role == Membership.Role.OWNER]
        return ", ".join(owners) or "—"


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "customer", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "customer__customer_id", "customer__name"]
    autocomplete_fields = ["user", "customer"]
    list_select_related = ["user", "customer"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are sent by owners from the members page; here they are only looked at."""

    list_display = ["email", "customer", "role", "created_at", "accepted_at"]
    list_filter = ["role"]
    search_fields = ["email", "customer__customer_id"]
    list_select_related = ["customer"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
