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
    held = models.BooleanField(
        default=False,
        help_text="A resource attached and detached over time (a project, a seat): it counts "
        "how many are held, and is billed for the time each is held.",
    )
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
    stripe_price_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="The Stripe price (price_…) that stripe_setup last pushed for this plan; "
        "upgrades and plan changes use it. Empty: not pushed to Stripe yet.",
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
    included = models.PositiveBigIntegerField(
        default=0, help_text="Units that come with the plan's price; only use beyond is billed."
    )
    unit_amount = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Price in minor units (the plan's currency) of each block of `per` units "
        "beyond what is included; for a held resource, of one unit held a whole cycle. "
        "Empty: not billed.",
    )
    per = models.PositiveBigIntegerField(
        default=1, help_text="Units in a priced block; a started block is billed whole."
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
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    subscription_id = models.CharField(
        max_length=255, help_text="The Stripe subscription (sub_…) this follows."
    )
    past_due_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the status became past_due (kept while it stays so): the grace of "
        "PAST_DUE_GRACE_DAYS runs from here. Empty unless past due.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.plan.code} ({self.status})"

    @property
    def is_live(self) -> bool:
        """Paid for or about to be: the plan's features apply."""
        return self.status in {self.Status.TRIALING, self.Status.ACTIVE, self.Status.PAST_DUE}


class ServiceAPIKeyQuerySet(models.QuerySet):
    def active(self) -> "ServiceAPIKeyQuerySet":
        return self.filter(revoked_at__isnull=True)


class ServiceAPIKey(models.Model):
    """A key the business's other services use for check-access and usage. Only a hash is
    kept: the key itself is shown once, when it is made."""

    name = models.CharField(max_length=100, help_text="Which service uses it.")
    prefix = models.CharField(max_length=16, unique=True, help_text="The key's visible start.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ServiceAPIKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "service API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class UsageEvent(models.Model):
    """One report of use, as a service sent it: the ledger that totals and invoices are
    built from. Recorded once per idempotency key, whichever customer it names (a key is
    the sending service's name for one report); never changed."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="usage_events")
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="usage_events")
    quantity = models.PositiveBigIntegerField()
    idempotency_key = models.CharField(max_length=255)
    occurred_at = models.DateTimeField(help_text="When the use happened, as the service said.")
    period_start = models.DateTimeField(help_text="The reset period it counts toward.")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"], name="licensing_usage_idempotency_key"
            ),
        ]
        indexes = [models.Index(fields=["customer", "feature", "period_start"])]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.feature_id} +{self.quantity}"


class UsageConsumption(models.Model):
    """A check-and-consume request (`consume: true` on check-access), recorded once per
    idempotency key with its answer, so a repeat answers as the first did. A granted one
    names the usage event it recorded; a refused one recorded none."""

    idempotency_key = models.CharField(max_length=255, unique=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="usage_consumptions"
    )
    feature_key = models.CharField(max_length=64)
    quantity = models.PositiveBigIntegerField()
    granted = models.BooleanField(default=False)
    decision = models.JSONField(default=dict, help_text="The answer given, as first given.")
    usage_event = models.OneToOneField(
        UsageEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="consumption"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        verb = "granted" if self.granted else "refused"
        return f"{self.customer_id} {self.feature_key} +{self.quantity} ({verb})"


class ResourceEvent(models.Model):
    """A billable resource attached to or detached from a customer, as a service reported
    it: the ledger of what was held when. Recorded once per idempotency key; never changed."""

    class Action(models.TextChoices):
        ATTACH = "attach", "Attached"
        DETACH = "detach", "Detached"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="resource_events")
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="resource_events")
    resource_id = models.CharField(
        max_length=255, help_text="The service's own id for the resource (a project's id, say)."
    )
    action = models.CharField(max_length=8, choices=Action.choices)
    idempotency_key = models.CharField(max_length=255)
    occurred_at = models.DateTimeField(help_text="When it was attached or detached.")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "idempotency_key"], name="licensing_resource_idempotency"
            ),
        ]
        indexes = [models.Index(fields=["customer", "feature", "resource_id", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.action} {self.feature_id}:{self.resource_id}"


class UsageTotal(models.Model):
    """Running total of a feature's use in one reset period, so a check reads one row."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="usage_totals")
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="usage_totals")
    period_start = models.DateTimeField()
    used = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "feature", "period_start"], name="licensing_usage_total"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.feature_id} {self.used}"


class SigningKey(models.Model):
    """A license signing key's public half, published in the JWKS while licenses it signed
    may be live. A generated key's private half is kept here sealed (AES-GCM under a key
    derived from DJANGO_SECRET_KEY); a configured one stays in LICENSE_SIGNING_KEY."""

    kid = models.CharField(max_length=64, primary_key=True)
    public_key = models.TextField(help_text="Ed25519 public key, PEM.")
    private_key_sealed = models.TextField(
        blank=True,
        default="",
        editable=False,
        help_text="A generated key's private half, sealed with DJANGO_SECRET_KEY; empty for "
        "a key configured in LICENSE_SIGNING_KEY.",
    )
    is_current = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_current"],
                condition=models.Q(is_current=True),
                name="licensing_one_current_signing_key",
            ),
        ]

    def __str__(self) -> str:
        return self.kid


class License(models.Model):
    """Every license issued: append-only. A newer one for the customer revokes this one."""

    jti = models.UUIDField(primary_key=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="licenses")
    plan_code = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16)
    features = models.JSONField(default=dict)
    kid = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="licenses")
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    grace_ends_at = models.DateTimeField(
        null=True, blank=True, help_text="Past due: the plan's features end then."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    token = models.TextField(help_text="The signed JWT, as the customer downloads it.")

    class Meta:
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["customer", "-issued_at"])]

    def __str__(self) -> str:
        return f"{self.jti} ({self.customer_id}, {self.plan_code or 'no plan'})"


class SpendCap(models.Model):
    """A customer's cap on what a metered feature (or the whole current invoice) may cost
    in a billing cycle, with the percentages of it to be told about. In stop mode
    check-access refuses (`spend_cap_reached`) use that would take the cost past it."""

    class Mode(models.TextChoices):
        ALERT = "alert", "Alert only"
        STOP = "stop", "Alert, and stop use at the cap"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="spend_caps")
    feature = models.ForeignKey(
        Feature,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="spend_caps",
        help_text="Empty: the current invoice's total.",
    )
    amount = models.PositiveBigIntegerField(
        help_text="The cap, in minor units of the plan's currency (cents)."
    )
    thresholds = models.JSONField(
        default=list, help_text="Percentages of the cap to alert at, e.g. [50, 80, 100]."
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.ALERT)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["customer", "feature"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "feature"],
                condition=models.Q(feature__isnull=False),
                name="licensing_spend_cap_per_feature",
            ),
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(feature__isnull=True),
                name="licensing_spend_cap_on_invoice",
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="licensing_spend_cap_positive"
            ),
        ]

    def __str__(self) -> str:
        scope = self.feature.key if self.feature_id else "invoice total"
        return f"{self.customer_id} {scope} ≤ {self.amount} ({self.mode})"


class SpendCapCrossing(models.Model):
    """A threshold of a cap crossed in one billing cycle: recorded once, so the email and
    the webhook go out once per cycle (append-only)."""

    cap = models.ForeignKey(SpendCap, on_delete=models.CASCADE, related_name="crossings")
    threshold = models.PositiveIntegerField(help_text="Percent of the cap.")
    period_start = models.DateTimeField(help_text="The billing cycle it was crossed in.")
    spend = models.BigIntegerField(help_text="What the cost was when it was crossed.")
    crossed_at = models.DateTimeField()

    class Meta:
        ordering = ["-crossed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["cap", "threshold", "period_start"], name="licensing_spend_cap_crossed_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cap_id} {self.threshold}% {self.period_start:%Y-%m-%d}"
