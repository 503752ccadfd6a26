"""Our billing tables hold Stripe ids and our own order, nothing personal: names, emails,
addresses and card details stay at Stripe (and, redacted, in dj-stripe's mirror)."""

from decimal import Decimal

from django.db import models

from accounts.models import Customer


class BillingInfoQuerySet(models.QuerySet):
    def for_customer(self, customer: Customer) -> "BillingInfo | None":
        """The Stripe customer a customer account bills through, if it has one yet."""
        return self.filter(customer_links__customer=customer).first()


class BillingInfo(models.Model):
    """One Stripe customer (`cus_…`). Several customer accounts of one owner may share it."""

    stripe_id = models.CharField(
        max_length=255, unique=True, help_text="The Stripe customer (cus_…)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BillingInfoQuerySet.as_manager()

    class Meta:
        verbose_name = "billing info"
        verbose_name_plural = "billing info"

    def __str__(self) -> str:
        return self.stripe_id


class CustomerBilling(models.Model):
    """Which Stripe customer a customer account bills through."""

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.CASCADE, related_name="billing"
    )
    billing_info = models.ForeignKey(
        BillingInfo, on_delete=models.PROTECT, related_name="customer_links"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.customer_id} → {self.billing_info.stripe_id}"


class PaymentMethodQuerySet(models.QuerySet):
    def for_customer(self, customer: Customer) -> "PaymentMethodQuerySet":
        return self.filter(billing_info__customer_links__customer=customer)


class PaymentMethod(models.Model):
    """A card (`pm_…`) and its place in the customer's priority order (0 is tried first)."""

    billing_info = models.ForeignKey(
        BillingInfo, on_delete=models.CASCADE, related_name="payment_methods"
    )
    stripe_id = models.CharField(
        max_length=255, unique=True, help_text="The Stripe payment method (pm_…)."
    )
    order = models.PositiveIntegerField(help_text="0 is the primary card, tried first.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PaymentMethodQuerySet.as_manager()

    class Meta:
        ordering = ["billing_info", "order", "created_at"]

    def __str__(self) -> str:
        return self.stripe_id


class InvoiceQuerySet(models.QuerySet):
    def for_customer(self, customer: Customer) -> "InvoiceQuerySet":
        return self.filter(customer=customer)

    def open(self) -> "InvoiceQuerySet":
        return self.filter(status=Invoice.Status.OPEN)


class Invoice(models.Model):
    """Our invoice of one customer's billing cycle: its lines are computed from the usage
    and resource ledgers while it is open, then synced to Stripe's invoice items; Stripe's
    finalized invoice (number, total, hosted page, PDF) is recorded on it when it closes.
    The cycle's current invoice is the customer's open one with the latest period."""

    class Status(models.TextChoices):
        OPEN = "open", "In progress"
        FINALIZED = "finalized", "Finalized"
        VOID = "void", "Void"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="invoices")
    plan = models.ForeignKey(
        "licensing.Plan", on_delete=models.PROTECT, related_name="invoices",
        help_text="The plan whose price and included amounts the lines follow.",
    )  # fmt: skip
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField(help_text="The billing cycle this invoice covers.")
    period_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    subscription_id = models.CharField(max_length=255, help_text="The Stripe subscription.")
    stripe_invoice_id = models.CharField(
        max_length=255, blank=True, help_text="Stripe's invoice (in_…) once it has one."
    )
    number = models.CharField(max_length=64, blank=True, help_text="Stripe's invoice number.")
    total = models.BigIntegerField(
        null=True, blank=True, help_text="Stripe's finalized total, in minor units."
    )
    # Stripe's URLs, as Stripe gave them (CharField: nothing here validates them for people).
    hosted_invoice_url = models.CharField(max_length=2000, blank=True)
    invoice_pdf = models.CharField(max_length=2000, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    lines_computed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the lines were last computed from the ledgers."
    )
    synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When the lines were last synced to Stripe."
    )
    # The last drift check's figures when Stripe and our ledger disagreed; both empty once
    # they agree again (the audit ledger keeps every drift seen).
    drift_ledger_amount = models.BigIntegerField(
        null=True, blank=True, help_text="Our ledger's figure when Stripe's differed."
    )
    drift_stripe_amount = models.BigIntegerField(
        null=True, blank=True, help_text="Stripe's figure when it differed from our ledger."
    )
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "period_start"], name="billing_invoice_one_per_cycle"
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__gt=models.F("period_start")),
                name="billing_invoice_period_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.period_start:%Y-%m-%d} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def has_drift(self) -> bool:
        return self.drift_stripe_amount is not None


class InvoiceLine(models.Model):
    """One line of our invoice, with what it was last synced to at Stripe. The figures are
    the ledger's; `synced_*` are what Stripe's invoice item said after the last sync, empty
    until then, so a sync sends only what differs."""

    class Kind(models.TextChoices):
        # The plan's own price: Stripe's subscription bills it, so it is never an invoice
        # item; it is here for the running total and to compare with Stripe's invoice.
        PLAN = "plan", "Plan"
        USAGE = "usage", "Usage"
        HELD = "held", "Resource held"
        # What a coupon takes off (negative), computed as Stripe computes it from the
        # subscription's discount: never an invoice item, Stripe applies the coupon itself.
        DISCOUNT = "discount", "Discount"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    key = models.CharField(
        max_length=100, help_text="Stable within the invoice: plan, usage:<feature>, held:<…>."
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    description = models.CharField(max_length=500)
    quantity = models.BigIntegerField(
        help_text="Units billed: beyond the included, or resource-seconds for what is held."
    )
    unit_amount = models.BigIntegerField(
        help_text="Minor units per block (per cycle held, for a resource)."
    )
    per = models.PositiveBigIntegerField(default=1, help_text="Units in a priced block.")
    amount = models.BigIntegerField(help_text="Minor units, in the invoice's currency.")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    stripe_invoice_item_id = models.CharField(
        max_length=255, blank=True, help_text="The Stripe invoice item (ii_…) last synced to."
    )
    synced_quantity = models.BigIntegerField(null=True, blank=True)
    synced_amount = models.BigIntegerField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    sync_version = models.PositiveIntegerField(
        default=0, help_text="Writes made to Stripe for this line: part of their keys."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["invoice", "id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "key"], name="billing_invoice_line_key"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} {self.key}: {self.amount}"

    @property
    def held_days(self) -> Decimal:
        """Resource-days beyond the included, for a held line."""
        return (Decimal(self.quantity) / 86_400).quantize(Decimal("0.1"))


class SubscriptionDiscount(models.Model):
    """A coupon redeemed on a customer's subscription at Stripe (its `di_…` discount), with
    the coupon's terms as they were redeemed, so that our invoices take off what Stripe's
    will (`billing.discounts`). Stripe ids and terms only: nothing personal."""

    class Duration(models.TextChoices):
        ONCE = "once", "Once"
        REPEATING = "repeating", "Repeating"
        FOREVER = "forever", "Forever"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="discounts")
    subscription_id = models.CharField(max_length=255, help_text="The Stripe subscription.")
    stripe_discount_id = models.CharField(max_length=255, unique=True, help_text="di_…")
    coupon_id = models.CharField(max_length=255, help_text="The Stripe coupon's id.")
    coupon_name = models.CharField(max_length=255, blank=True)
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount_off = models.BigIntegerField(
        null=True, blank=True, help_text="Minor units, in `currency`."
    )
    currency = models.CharField(max_length=3, blank=True)
    duration = models.CharField(max_length=16, choices=Duration.choices)
    duration_in_months = models.PositiveIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField(help_text="Stripe's `start`: when it was redeemed.")
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text="Stripe's `end`, for a repeating coupon."
    )
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When another coupon replaced it."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(percent_off__isnull=False, amount_off__isnull=True)
                    | models.Q(percent_off__isnull=True, amount_off__isnull=False)
                ),
                name="billing_discount_percent_or_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.coupon_id} on {self.subscription_id}"


class StripeEvent(models.Model):
    """A Stripe event, stored once when its webhook is verified (or when the reconcile finds
    it in Stripe's events list) and processed afterwards by a task. Only what processing
    needs is kept: the object it is about is fetched again from Stripe."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be processed"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed (retried; see the error)"

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        RECONCILE = "reconcile", "Found by the reconcile"

    event_id = models.CharField(max_length=255, primary_key=True, help_text="Stripe's evt_… id.")
    type = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=255, blank=True, db_index=True)
    # A few ids from the event's object that processing follows (a session's subscription,
    # a setup intent's payment method); nothing personal.
    related = models.JSONField(default=dict, blank=True)
    stripe_created = models.DateTimeField(help_text="When Stripe created the event.")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.WEBHOOK)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-stripe_created", "-event_id"]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.type})"


class StripeObjectSync(models.Model):
    """One sync of a Stripe object at a time. A sync fetches the object only after taking
    the claim, so a snapshot older than the one applied can never be written over it;
    a sync asked for while another runs sets `pending`, and the runner goes again."""

    stripe_id = models.CharField(max_length=255, primary_key=True)
    pending = models.BooleanField(default=False)
    claimed_by = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.stripe_id


class UpgradeCheckout(models.Model):
    """The subscription-mode Checkout Sessions opened for an account, one per generation:
    concurrent starts of one generation share an idempotency key, so Stripe returns them
    one session, and the unique constraint settles which row records it."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="upgrade_checkouts"
    )
    generation = models.PositiveIntegerField()
    plan_code = models.CharField(max_length=64)
    session_id = models.CharField(max_length=255, unique=True)
    url = models.URLField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["customer", "-generation"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "generation"], name="billing_upgrade_checkout_generation"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} #{self.generation} {self.session_id}"


class EventReconcile(models.Model):
    """One pass of the reconcile over Stripe's events list: append-only. The newest row's
    `cursor` is where the next pass starts (less an overlap)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    cursor = models.DateTimeField(
        null=True, blank=True, help_text="Creation time of the newest event seen so far."
    )
    listed = models.PositiveIntegerField(default=0, help_text="Events listed from Stripe.")
    repaired = models.PositiveIntegerField(
        default=0, help_text="Events that had not been received or processed, processed now."
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Reconcile {self.started_at:%Y-%m-%d %H:%M}"


class InvoiceRecovery(models.Model):
    """A Stripe invoice whose payment failed, and what the portal has done about it: the
    customer's other cards tried in their order (`attempts`), round by round. A round
    answers one of Stripe's own attempts (the first, then each Smart Retry: Stripe's
    `attempt_count`, which our own `pay` calls after the first do not move)."""

    class Status(models.TextChoices):
        OPEN = "open", "Unpaid"
        RECOVERED = "recovered", "Paid by another card of the customer"
        PAID = "paid", "Paid"
        CLOSED = "closed", "Void or uncollectible"

    stripe_invoice_id = models.CharField(max_length=255, unique=True)
    billing_info = models.ForeignKey(
        BillingInfo, on_delete=models.CASCADE, related_name="recoveries"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="invoice_recoveries",
        help_text="The account whose subscription the invoice bills: its pages show the banner.",
    )  # fmt: skip
    amount = models.BigIntegerField(help_text="What is left to pay, in minor units.")
    currency = models.CharField(max_length=3)
    hosted_invoice_url = models.CharField(max_length=2000, blank=True)
    failed_at = models.DateTimeField(help_text="When Stripe's first attempt failed.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    round = models.PositiveIntegerField(
        default=0, help_text="Stripe's attempt count this recovery last answered."
    )
    round_payment_method = models.CharField(
        max_length=255, blank=True, help_text="The card Stripe's attempt of this round charged."
    )
    round_decline_code = models.CharField(max_length=64, blank=True)
    notified_round = models.PositiveIntegerField(
        default=0, help_text="The last round the customer was emailed about."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "status"], name="billing_recovery_open")]

    def __str__(self) -> str:
        return f"{self.stripe_invoice_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class PaymentAttempt(models.Model):
    """One `POST /v1/invoices/{id}/pay` with one card, written before the request goes out
    (pending) and settled by its answer. Its idempotency key is (invoice, card, round), so
    a retried task replays the same request and an invoice is never paid twice; at most
    one attempt of an invoice is pending, so no other card is tried while an outcome is
    unknown."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Sent; outcome not known yet"
        PAID = "paid", "Paid"
        DECLINED = "declined", "Declined"
        REQUIRES_ACTION = "requires_action", "Needs the customer to authenticate"
        SKIPPED = "skipped", "Card no longer usable (detached)"
        NOT_PAYABLE = "not_payable", "Invoice already paid or closed"

    recovery = models.ForeignKey(InvoiceRecovery, on_delete=models.CASCADE, related_name="attempts")
    payment_method = models.CharField(max_length=255, help_text="The card tried (pm_…).")
    round = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    decline_code = models.CharField(max_length=64, blank=True)
    final = models.BooleanField(
        default=False, help_text="A decline that retrying the same card cannot fix."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["recovery", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recovery", "payment_method", "round"], name="billing_attempt_once"
            ),
            models.UniqueConstraint(
                fields=["recovery"],
                condition=models.Q(outcome="pending"),
                name="billing_attempt_one_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recovery_id} {self.payment_method} #{self.round}: {self.outcome}"

    @property
    def card_label(self) -> str:
        """ "Visa ending 4242", from the mirror: card details are Stripe's, not ours."""
        from .mirror import card_label

        return card_label(self.payment_method)
