"""Users, the customer accounts they belong to, and their roles in them."""

import math
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from .managers import UserManager

CUSTOMER_ID_PREFIX = "cust_"


def new_customer_id() -> str:
    return f"{CUSTOMER_ID_PREFIX}{uuid.uuid4().hex}"


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(
        "email address",
        max_length=254,
        help_text="The login. Unique whatever its letter case.",
    )
    is_staff = models.BooleanField(
        default=False, help_text="Can sign in to this admin site (support staff)."
    )
    is_active = models.BooleanField(
        default=True, help_text="Unticking this blocks sign-in without deleting the user."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    email_verified_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the user followed the link emailed to this address. Until then they "
        "may use the trial but not add cards or buy plans.",
    )

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="accounts_user_email_ci_unique",
                violation_error_message="A user with this email address already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email)

    @property
    def is_email_verified(self) -> bool:
        return self.email_verified_at is not None


class CustomerQuerySet(models.QuerySet):
    def for_user(self, user: User) -> "CustomerQuerySet":
        return self.filter(memberships__user=user)


class Customer(models.Model):
    """The billable account. Its `customer_id` is the id every other system knows it by."""

    customer_id = models.CharField(
        primary_key=True,
        max_length=37,
        default=new_customer_id,
        editable=False,
        help_text="Our id for this account (cust_…); written into Stripe metadata.",
    )
    name = models.CharField(
        "company name", max_length=200, blank=True, help_text="Optional, as given at signup."
    )
    trial_ends_at = models.DateTimeField(
        help_text="End of the free trial. Extend it here to give a customer more time."
    )
    trial_reminder_sent_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the trial-ending email went out."
    )
    suspended_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Set by support (suspend): check-access answers account_suspended and the "
        "license states no features until it is lifted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    standing_version = models.BigIntegerField(
        default=0,
        editable=False,
        help_text="Given anew by the database whenever what check-access's standing is read "
        "from changes (licensing/standing_versions.py); whatever is written here is replaced.",
    )

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(customer_id__startswith=CUSTOMER_ID_PREFIX),
                name="accounts_customer_id_prefix",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.customer_id

    @property
    def display_name(self) -> str:
        return self.name or "Your account"

    def is_trialing(self, now=None) -> bool:
        return self.trial_ends_at > (now or timezone.now())

    def trial_days_left(self, now=None) -> int:
        """Whole days left in the trial, counting a started day as a day; 0 once it ends."""
        remaining = self.trial_ends_at - (now or timezone.now())
        if remaining <= timedelta(0):
            return 0
        return math.ceil(remaining / timedelta(days=1))


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        BILLING = "billing", "Billing"
        MEMBER = "member", "Member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "customer"], name="accounts_membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) in {self.customer_id}"


class Invitation(models.Model):
    """An owner's emailed invitation to join a customer account with a role. Its link is
    signed and expires (accounts.tokens); accepting it sets `accepted_at`, once."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254, help_text="The address the invitation went to.")
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the link was used; it works once."
    )
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_role_display()}) to {self.customer_id}"

    @property
    def is_accepted(self) -> bool:
        return self.accepted_at is not None


class IdentityOrganization(models.Model):
    """An organization of the identity provider (the token claim named by OIDC_ORG_CLAIM)
    linked to a customer account: its verified members are members of the account."""

    org_id = models.CharField(
        "organization id", max_length=255, unique=True,
        help_text="The organization claim's value in the provider's tokens (e.g. org_…).",
    )  # fmt: skip
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="identity_organizations"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["org_id"]

    def __str__(self) -> str:
        return f"{self.org_id} → {self.customer_id}"
