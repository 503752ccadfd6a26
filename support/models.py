"""What the support console keeps of its own: erasure records (and, on them, the
console's permissions)."""

from django.db import models


class Erasure(models.Model):
    """A customer account whose people were erased (GDPR). No personal data: our ids and
    Stripe's, so the erasure can be applied again after a database restore
    (`manage.py erasures_reapply`, which reads the copy in ERASURE_LOG_PATH)."""

    customer_id = models.CharField(max_length=37, unique=True)
    user_ids = models.JSONField(default=list, help_text="Our users erased with the account.")
    stripe_customer_ids = models.JSONField(default=list)
    stripe_customers_deleted = models.JSONField(
        default=list,
        blank=True,
        help_text="Those of stripe_customer_ids deleted at Stripe (nothing was owed); the "
        "others had their personal fields cleared.",
    )
    staff_id = models.BigIntegerField(null=True, blank=True, help_text="Who asked for it.")
    erased_at = models.DateTimeField()

    class Meta:
        ordering = ["-erased_at"]
        permissions = [
            ("support_view", "Can open customers' support pages"),
            ("support_act", "Can take support actions on customers"),
        ]

    def __str__(self) -> str:
        return f"Erasure of {self.customer_id}"
