"""Writing to the audit ledger, from any app and from staff actions."""

from django.contrib.auth.base_user import AbstractBaseUser

from .models import Entry

Source = Entry.Source


def entry_record(
    *,
    customer_id: str,
    kind: str,
    source: str,
    sentence: str,
    actor: AbstractBaseUser | None = None,
    data: dict | None = None,
) -> Entry:
    return Entry.objects.create(
        customer_id=customer_id,
        kind=kind,
        source=source,
        sentence=sentence,
        actor=actor,
        data=data or {},
    )


def entries_record(
    *,
    customer_ids: list[str],
    kind: str,
    source: str,
    sentence: str,
    actor: AbstractBaseUser | None = None,
    data: dict | None = None,
) -> list[Entry]:
    """The same entry for several accounts (those sharing one Stripe customer)."""
    return Entry.objects.bulk_create(
        Entry(
            customer_id=customer_id,
            kind=kind,
            source=source,
            sentence=sentence,
            actor=actor,
            data=data or {},
        )
        for customer_id in customer_ids
    )
