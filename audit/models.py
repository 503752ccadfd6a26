"""The audit ledger: rows are added, never changed or deleted (an account's erasure takes
its rows with it). Stripe ids and our own ids only: no personal data in `data`."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Entry(models.Model):
    class Source(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        STRIPE = "stripe", "Stripe"
        STAFF = "staff", "Staff"
        SYSTEM = "system", "System"

    # By name, not by import: accounts writes here too, and apps depend one way.
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.CASCADE, related_name="audit_entries"
    )
    kind = models.CharField(
        max_length=64, db_index=True, help_text="What happened, for machines (card_added…)."
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The person who did it: the customer's user, or the staff member.",
    )
    sentence = models.CharField(max_length=300, help_text="What happened, for people.")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit ledger"

    def __str__(self) -> str:
        return f"{self.sentence} ({self.customer_id})"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("The audit ledger is append-only.")
        super().save(*args, **kwargs)
