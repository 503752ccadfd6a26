"""Our billing tables hold Stripe ids and our own order, nothing personal: names, emails,
addresses and card details stay at Stripe (and, redacted, in dj-stripe's mirror)."""

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


class BillingEvent(models.Model):
    """The customer's billing timeline: append-only, shown on /billing/ and in the admin."""

    class Kind(models.TextChoices):
        STRIPE_CUSTOMER_CREATED = "stripe_customer_created", "Billing account opened"
        CARD_ADDED = "card_added", "Card added"
        CARD_REMOVED = "card_removed", "Card removed"
        CARD_REORDERED = "card_reordered", "Cards reordered"
        CARD_MADE_PRIMARY = "card_made_primary", "Primary card changed"
        DETAILS_UPDATED = "details_updated", "Billing details updated"
        PLAN_ACTIVATED = "plan_activated", "Plan started"
        PLAN_CHANGED = "plan_changed", "Plan changed"
        CANCELLATION_SCHEDULED = "cancellation_scheduled", "Plan set to end at period end"
        CANCELLATION_WITHDRAWN = "cancellation_withdrawn", "Plan resumed"
        SUBSCRIPTION_ENDED = "subscription_ended", "Plan ended"
        STRIPE_CUSTOMER_GONE = "stripe_customer_gone", "Billing account not found at Stripe"
        SUBSCRIPTION_GONE = "subscription_gone", "Plan not found at Stripe"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="billing_events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Stripe ids and orders only: the timeline must not hold personal data either.
    data = models.JSONField(default=dict, blank=True)
    source = models.CharField(
        max_length=16,
        default="portal",
        help_text="Where the change came from: portal (the customer), stripe (a webhook), staff.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.customer_id})"
