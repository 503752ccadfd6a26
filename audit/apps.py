from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The portal's one append-only audit ledger: what happened to a customer account, who
    or what did it (the customer, Stripe, staff, the system) and a sentence for people.
    Every app writes to it; it imports none of them."""

    name = "audit"
    verbose_name = "Audit ledger"
