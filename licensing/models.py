"""The plan catalog (loaded from catalog.toml) and each customer's current plan, a
projection of their Stripe subscription written by billing. Nothing here knows Stripe."""

from django.db import models

from accounts.models import Customer


class Feature(models.Model):
    class Kind(models.TextChoices):
        BOOLEAN = "boolean", "On or off"
        METERED = "metered", "Metered"

    key = models.SlugField(max_length=64, unique=True, help_text="As services ask for it.")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    unit = models.CharField(max_length=32, blank=True, help_text="What one unit of use is.")
    is_active = models.BooleanField(default=True, help_text="False once gone from the catalog.")

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class Plan(models.Model):
    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    amount = models.PositiveIntegerField(
        null=True, blank=True, help_text="Monthly price in minor units (cents); empty: not sold."
    )
    currency = models.CharField(max_length=3, blank=True)
    lookup_key = models.CharField(
        max_length=200, blank=True, help_text="Finds the plan's current price at Stripe."
    )
    trial_allowed = models.BooleanField(
        default=False, help_text="Upgrading during the free trial keeps the remaining days."
    )
    is_active = models.BooleanField(default=True, help_text="False once gone from the catalog.")
    position = models.PositiveIntegerField(default=0, help_text="Order on the plans page.")
    features = models.ManyToManyField(Feature, through="PlanFeature", related_name="plans")

    class Meta:
        ordering = ["position", "code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__isnull=True)
                | (~models.Q(currency="") & ~models.Q(lookup_key="")),
                name="licensing_plan_sold_has_price",
                violation_error_message="A plan with an amount needs a currency and lookup key.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_sold(self) -> bool:
        return self.amount is not None and self.is_active


class PlanFeature(models.Model):
    class Reset(models.TextChoices):
        MONTHLY = "monthly", "Every month"
        NEVER = "never", "Never"

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="plan_features")
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="plan_features")
    limit = models.BigIntegerField(
        null=True, blank=True, help_text="Units allowed per reset period; empty: unlimited."
    )
    reset = models.CharField(max_length=16, choices=Reset.choices, default=Reset.NEVER)
    soft_limit = models.BigIntegerField(
        null=True, blank=True, help_text="Past this, use is still allowed but reported."
    )

    class Meta:
        ordering = ["plan", "feature"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "feature"], name="licensing_plan_feature"),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code}: {self.feature.key}"


class CustomerPlan(models.Model):
    """The customer's paid plan as Stripe has it, written by one service from Stripe's
    current subscription (so webhook order and duplicates do not matter). No row: the
    customer is on the free trial, or had nothing yet."""

    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.CASCADE, related_name="plan"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="customer_plans")
    status = models.CharField(max_length=16, choices=Status.choices)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    subscription_id = models.CharField(
        max_length=255, help_text="The Stripe subscription (sub_…) this follows."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.plan.code} ({self.status})"

    @property
    def is_live(self) -> bool:
        """Paid for or about to be: the plan's features apply."""
        return self.status in {self.Status.TRIALING, self.Status.ACTIVE, self.Status.PAST_DUE}
