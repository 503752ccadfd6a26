"""GDPR for a customer account's people: export everything we and Stripe hold about them
in one JSON document, and erase them.

Erasing removes the people (their users, with their emails), the company name, their
sessions and their licenses' validity from our tables, redacts what the timeline says of
them, and deletes the Stripe customer when nothing is owed (or clears its personal fields
when something still is, or will be, billed). The billing records the law keeps
(our invoices' numbers and amounts) stay, with nobody in them. An `Erasure` record of ids
only is kept in the database and appended to ERASURE_LOG_PATH, outside it, so that the
erasure can be applied again after restoring a backup taken before it
(`manage.py erasures_reapply`)."""

import json
import logging
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Customer, User
from audit.models import Entry
from billing import gateway, invoicing, mirror
from billing.errors import BillingError
from billing.models import BillingInfo, CustomerBilling, PaymentMethod
from licensing.models import License, ResourceEvent, UsageEvent

from .models import Erasure

logger = logging.getLogger(__name__)

ERASED = "[erased]"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def personal_data_export(*, customer: Customer) -> dict:
    """Everything about the account and its people, ours and Stripe's (its billing details
    are read live: Stripe holds them, we do not)."""
    info = BillingInfo.objects.for_customer(customer)
    billing_details = None
    if info is not None and settings.BILLING_ENABLED:
        billing_details = asdict(
            gateway.customer_billing_details(stripe_customer_id=info.stripe_id)
        )
    cards = mirror.cards_for_display(
        list(PaymentMethod.objects.for_customer(customer).order_by("order"))
    )
    invoices = invoicing.invoices_with_totals(customer=customer).prefetch_related("lines")
    return {
        "exported_at": timezone.now().isoformat(),
        "account": {
            "customer_id": customer.customer_id,
            "company_name": customer.name,
            "created_at": _iso(customer.created_at),
            "trial_ends_at": _iso(customer.trial_ends_at),
            "suspended_at": _iso(customer.suspended_at),
            "stripe_customer": info.stripe_id if info else None,
        },
        "members": [
            {
                "email": m.user.email,
                "role": m.role,
                "joined": _iso(m.created_at),
                "last_login": _iso(m.user.last_login),
                "email_verified_at": _iso(m.user.email_verified_at),
            }
            for m in customer.memberships.select_related("user")
        ],
        "billing_details": billing_details,
        "cards": [asdict(card) for card in cards],
        "invoices": [
            {
                "number": inv.number,
                "period_start": _iso(inv.period_start),
                "period_end": _iso(inv.period_end),
                "status": inv.status,
                "currency": inv.currency,
                "total": inv.total if inv.total is not None else inv.lines_total,
                "hosted_invoice_url": inv.hosted_invoice_url,
                "lines": [
                    {
                        "description": line.description,
                        "quantity": line.quantity,
                        "amount": line.amount,
                    }
                    for line in invoicing.lines_in_order(inv.lines.all())
                ],
            }
            for inv in invoices
        ],
        "usage": [
            {"feature": key, "quantity": qty, "occurred_at": _iso(at)}
            for key, qty, at in UsageEvent.objects.filter(customer=customer)
            .order_by("occurred_at")
            .values_list("feature__key", "quantity", "occurred_at")
        ],
        "resources": [
            {"feature": key, "resource_id": rid, "action": action, "occurred_at": _iso(at)}
            for key, rid, action, at in ResourceEvent.objects.filter(customer=customer)
            .order_by("occurred_at")
            .values_list("feature__key", "resource_id", "action", "occurred_at")
        ],
        "licenses": [
            {
                "jti": str(lic.jti),
                "plan": lic.plan_code,
                "status": lic.status,
                "features": lic.features,
                "issued_at": _iso(lic.issued_at),
                "expires_at": _iso(lic.expires_at),
                "revoked_at": _iso(lic.revoked_at),
            }
            for lic in License.objects.filter(customer=customer)
        ],
        "timeline": [
            {"at": _iso(e.created_at), "kind": e.kind, "source": e.source, "sentence": e.sentence}
            for e in Entry.objects.filter(customer=customer).order_by("created_at", "id")
        ],
    }


def _people(customer_id: str) -> list[User]:
    """The users erased with the account: its members who belong to no other account (a
    member of another account is that account's person too, and keeps their login)."""
    members = User.objects.filter(memberships__customer_id=customer_id)
    elsewhere = User.objects.filter(memberships__isnull=False).exclude(
        memberships__customer_id=customer_id
    )
    return list(members.exclude(pk__in=elsewhere.values("pk")).exclude(is_staff=True))


def personal_data_erase(*, customer: Customer, staff: AbstractBaseUser | None) -> Erasure:
    """Erase the account's people (see the module). Stripe is told first, outside any
    transaction: if it fails, nothing here has changed and the action can be taken again."""
    info = BillingInfo.objects.for_customer(customer)
    stripe_ids = []
    if info is not None:
        shared = CustomerBilling.objects.filter(billing_info=info).exclude(customer=customer)
        if not shared.exists():  # another account of the same owner still bills through it
            stripe_ids.append(info.stripe_id)
    _log_writable_check()
    if stripe_ids and not settings.BILLING_ENABLED:
        raise BillingError(
            "Billing is not enabled, so the Stripe customer cannot be erased now: nothing "
            "was erased."
        )
    deleted = []
    for stripe_id in stripe_ids:
        # Deleting cancels its subscriptions at once: only when nothing is owed or will
        # still be billed. Otherwise the customer stays, without the person.
        if gateway.customer_debts(stripe_customer_id=stripe_id).nothing_owed:
            gateway.customer_delete(stripe_customer_id=stripe_id)
            deleted.append(stripe_id)
        else:
            gateway.customer_personal_data_clear(
                stripe_customer_id=stripe_id, request_key=customer.customer_id
            )
    erasure = Erasure(
        customer_id=customer.customer_id,
        user_ids=[user.pk for user in _people(customer.customer_id)],
        stripe_customer_ids=stripe_ids,
        stripe_customers_deleted=deleted,
        staff_id=staff.pk if staff else None,
        erased_at=timezone.now(),
    )
    # The log before our tables: an erasure it holds is applied again by erasures_reapply
    # even if the database's part fails below; one missing from it would come back with a
    # backup. (It was found writable before Stripe was asked.)
    _log_append(_log_line(erasure))
    with transaction.atomic():
        erasure.save()
        erasure_apply(erasure=erasure)
    return erasure


def erasure_apply(*, erasure: Erasure) -> None:
    """Remove the people of an erasure from our tables; applying it twice changes nothing
    more. Reads the restored rows' emails and names first, to redact where they appear."""
    customer = Customer.objects.filter(pk=erasure.customer_id).first()
    users = list(User.objects.filter(pk__in=erasure.user_ids))
    emails = [user.email for user in users]
    strings = [s for s in [*emails, customer.name if customer else ""] if s and s != ERASED]
    user_ids = {str(user.pk) for user in users}

    for session in Session.objects.all().iterator():
        if session.get_decoded().get("_auth_user_id") in user_ids:
            session.delete()
    if customer is not None:
        License.objects.filter(customer=customer, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        Customer.objects.filter(pk=customer.pk).update(name="")
        _entries_redact(customer.pk, strings)
    _access_logs_forget(emails)
    if strings:
        matches = Q()
        for text in strings:
            matches |= Q(object_repr__icontains=text) | Q(change_message__icontains=text)
        LogEntry.objects.filter(matches).delete()
    User.objects.filter(pk__in=erasure.user_ids).delete()  # memberships go with them


def _entries_redact(customer_id: str, strings: list[str]) -> None:
    """The timeline is append-only, except for this: what it says of erased people goes."""
    if not strings:
        return
    for entry in Entry.objects.filter(customer_id=customer_id).only("pk", "sentence", "data"):
        sentence, data = entry.sentence, json.dumps(entry.data)
        for text in strings:
            sentence = sentence.replace(text, ERASED)
            data = data.replace(json.dumps(text)[1:-1], ERASED)
        if sentence != entry.sentence or data != json.dumps(entry.data):
            Entry.objects.filter(pk=entry.pk).update(sentence=sentence, data=json.loads(data))


def _access_logs_forget(emails: list[str]) -> None:
    """django-axes keeps the email typed at each sign-in attempt."""
    if not emails:
        return
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        model.objects.filter(username__in=emails).delete()


def _log_line(erasure: Erasure) -> dict:
    return {
        "customer_id": erasure.customer_id,
        "user_ids": erasure.user_ids,
        "stripe_customer_ids": erasure.stripe_customer_ids,
        "stripe_customers_deleted": erasure.stripe_customers_deleted,
        "staff_id": erasure.staff_id,
        "erased_at": erasure.erased_at.isoformat(),
    }


def _log_writable_check() -> None:
    """Before anything is erased: the log must take the record, or nothing is done."""
    path = Path(settings.ERASURE_LOG_PATH)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as error:
        logger.error("Erasure log %s not writable: %r", path, error)
        raise BillingError(
            "The erasure log could not be written, so nothing was erased. Tell the operator."
        ) from error


def _log_append(record: dict) -> None:
    path = Path(settings.ERASURE_LOG_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def erasures_reapply(*, path: Path | None = None) -> int:
    """Apply again every erasure in the log (after restoring a backup); returns how many.
    The records come back into the database too, so the accounts stay refused."""
    path = Path(path or settings.ERASURE_LOG_PATH)
    if not path.exists():
        return 0
    applied = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        with transaction.atomic():
            erasure, _ = Erasure.objects.get_or_create(
                customer_id=record["customer_id"],
                defaults={
                    "user_ids": record["user_ids"],
                    "stripe_customer_ids": record["stripe_customer_ids"],
                    "stripe_customers_deleted": record.get("stripe_customers_deleted", []),
                    "staff_id": record.get("staff_id"),
                    "erased_at": datetime.fromisoformat(record["erased_at"]),
                },
            )
            erasure_apply(erasure=erasure)
        applied += 1
    return applied
