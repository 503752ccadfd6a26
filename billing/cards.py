"""Cards: the account's Stripe customer, its payment methods in priority order, and its
billing details. Each is called the same way from pages, webhooks, admin and tasks.

No Stripe call is made while a database transaction is open: Stripe is asked first, the
answer is written in a short transaction, and what Stripe must then be told (the default
card) is sent after the commit. Races are settled by the unique constraints and
deterministic idempotency keys, with a re-read after an IntegrityError."""

import hashlib
import logging

from django.db import IntegrityError, transaction
from django.db.models import Max
from djstripe import models as djstripe_models

from accounts.models import Customer
from audit.models import Entry
from licensing.models import CustomerPlan
from licensing.services import LIVE_STATUSES

from . import gateway, mirror
from .errors import CannotRemoveLastCard
from .ledger import billing_entries_record
from .models import BillingInfo, CustomerBilling, PaymentMethod
from .sync import object_sync

logger = logging.getLogger(__name__)


def billing_info_ensure(*, customer: Customer, email: str) -> BillingInfo:
    """The customer account's Stripe customer, created once and only once.

    The create carries a key derived from our id, so twenty concurrent clicks get one
    Stripe customer back; the first to record it wins the one-to-one link and the others
    read it. A link lost on our side is found again by the `customer_id` Stripe keeps in
    the customer's metadata. If Stripe fails, nothing is written here, and the next call
    converges on the same customer.
    """
    existing = BillingInfo.objects.for_customer(customer)
    if existing:
        return existing
    stripe_id = gateway.customer_find_by_customer_id(
        customer_id=customer.customer_id
    ) or gateway.customer_create(customer_id=customer.customer_id, email=email, name=customer.name)
    try:
        with transaction.atomic():
            billing_info, _ = BillingInfo.objects.get_or_create(stripe_id=stripe_id)
            CustomerBilling.objects.create(customer=customer, billing_info=billing_info)
            billing_entries_record(
                customer_ids=[customer.customer_id],
                kind="stripe_customer_created",
                source="portal",
                stripe_customer=stripe_id,
            )
    except IntegrityError:  # a concurrent call recorded the link just now
        existing = BillingInfo.objects.for_customer(customer)
        if existing is None:
            raise
        return existing
    return billing_info


def billing_info_has_live_plan(billing_info: BillingInfo) -> bool:
    """Whether an account billing through this Stripe customer has a plan that is paid for
    or will be (its trial included): it renews with the cards on file."""
    return CustomerPlan.objects.filter(
        customer__billing__billing_info=billing_info, status__in=LIVE_STATUSES
    ).exists()


def _timeline(billing_info: BillingInfo, kind: str, source: str, **data) -> list:
    """One ledger entry for each customer account that bills through this Stripe customer."""
    customer_ids = list(billing_info.customer_links.values_list("customer_id", flat=True))
    return billing_entries_record(customer_ids=customer_ids, kind=kind, source=source, **data)


def _compact(billing_info: BillingInfo) -> list[PaymentMethod]:
    """Renumber the cards 0, 1, 2… in their current order; returns them in order."""
    cards = list(billing_info.payment_methods.order_by("order", "created_at"))
    changed = []
    for position, card in enumerate(cards):
        if card.order != position:
            card.order = position
            changed.append(card)
    PaymentMethod.objects.bulk_update(changed, ["order"])
    return cards


def _default_push(billing_info: BillingInfo, *, change: str) -> None:
    """Tell Stripe which card is the default: ours at order 0, read now, after the commit.
    `change` names the change that made it primary (a timeline entry, a removal), so each
    change is one write however often it is retried, and a card made primary again later
    is a new write, not a replay of the first."""
    primary = billing_info.payment_methods.order_by("order", "created_at").first()
    if primary is None:
        return
    gateway.customer_default_payment_method_set(
        stripe_customer_id=billing_info.stripe_id,
        payment_method_id=primary.stripe_id,
        request_key=f"{change}:{primary.stripe_id}",
    )


def payment_method_sync(*, stripe_id: str, source: str = "stripe") -> PaymentMethod | None:
    """Make our row for one payment method follow Stripe's state, whatever the order in
    which the return page and the webhooks (attached, detached, checkout completed, setup
    intent succeeded) arrive: attached to a customer we know → recorded once, at the end of
    the order; detached → gone. The first card becomes Stripe's default. A card already on
    file (same fingerprint and expiry), entered again through either Checkout, is listed
    once: the copy is detached at Stripe and the card on file is returned.

    Returns the card as recorded, or None when it is not ours (or another sync of it is
    running and will record it)."""

    # Every change any run of this sync made, not only the last run's: a sync asked for
    # while the first ran makes it run again, and that run finds the card recorded.
    changes: list[tuple[BillingInfo, str]] = []
    added: list[PaymentMethod] = []

    def run() -> tuple[PaymentMethod | None, BillingInfo | None, str | None]:
        stripe_pm = gateway.payment_method_retrieve(payment_method_id=stripe_id)
        mirror.payment_method_mirror(stripe_pm)
        known = PaymentMethod.objects.filter(stripe_id=stripe_id).exists()
        outcome = _payment_method_apply(stripe_pm, source=source)
        if not known and outcome[0] is not None and outcome[0].stripe_id == stripe_id:
            added.append(outcome[0])
        if outcome[1] is not None and outcome[2] is not None:
            changes.append((outcome[1], outcome[2]))
        if outcome[0] is not None and outcome[0].stripe_id != stripe_id:
            # The same card entered again: the copy goes (while this sync holds the claim,
            # so a sync asked for meanwhile finds it detached), and removing the card we
            # list removes it at Stripe too. Keyed by the copy: a retry changes nothing.
            gateway.payment_method_detach(payment_method_id=stripe_id)
        return outcome

    _ran, outcome = object_sync(stripe_id=stripe_id, run=run)
    for billing_info, change in changes:
        _default_push(billing_info, change=change)
    for card in added:
        _try_on_open_invoices(card)
    return outcome[0] if outcome else None


def _try_on_open_invoices(card: PaymentMethod) -> None:
    """A card added while an invoice of its customer is unpaid is tried on it at once."""
    if not card.billing_info.recoveries.filter(status="open").exists():
        return
    from . import tasks

    payment_method_id = card.stripe_id
    transaction.on_commit(
        lambda: tasks.card_try_on_open_invoices.delay(payment_method_id=payment_method_id),
        robust=True,
    )


def _card_on_file(billing_info: BillingInfo, stripe_pm: dict) -> PaymentMethod | None:
    """The card of this customer that `stripe_pm` is a copy of: Stripe gives a card number
    one fingerprint per account, so the same fingerprint and expiry is the same card."""
    details = stripe_pm.get("card") or {}
    if not details.get("fingerprint"):
        return None
    cards = {card.stripe_id: card for card in billing_info.payment_methods.all()}
    mirrored = djstripe_models.PaymentMethod.objects.filter(id__in=list(cards))
    for row in mirrored.only("id", "stripe_data").order_by("id"):
        on_file = row.stripe_data.get("card") or {}
        if all(on_file.get(key) == details.get(key) for key in DUPLICATE_KEYS):
            return cards[row.id]
    return None


# What makes two payment methods one card (their customer is the same by construction).
DUPLICATE_KEYS = ("fingerprint", "exp_month", "exp_year")


@transaction.atomic
def _payment_method_apply(
    stripe_pm: dict, *, source: str
) -> tuple[PaymentMethod | None, BillingInfo | None, str | None]:
    """(card, its billing info, the change to tell Stripe about, if any). A copy of a card
    on file comes back as the card on file, for the caller to detach the copy."""
    stripe_id = stripe_pm["id"]
    stripe_customer = stripe_pm["customer"]  # an id: the gateway does not expand it
    billing_info = (
        BillingInfo.objects.select_for_update().filter(stripe_id=stripe_customer).first()
        if stripe_customer
        else None
    )
    existing = PaymentMethod.objects.select_related("billing_info").filter(stripe_id=stripe_id)
    existing = existing.first()
    if billing_info is None:
        if existing:
            return None, *_payment_method_forget(existing, source=source)
        return None, None, None
    if existing:
        return existing, None, None
    on_file = _card_on_file(billing_info, stripe_pm)
    if on_file is not None:
        _timeline(
            billing_info,
            "card_already_on_file",
            source,
            payment_method=stripe_id,
            kept=on_file.stripe_id,
        )
        return on_file, None, None
    last = billing_info.payment_methods.aggregate(last=Max("order"))["last"]
    card = PaymentMethod.objects.create(
        billing_info=billing_info, stripe_id=stripe_id, order=0 if last is None else last + 1
    )
    _timeline(billing_info, "card_added", source, payment_method=stripe_id)
    return card, billing_info, f"first-card:{stripe_id}" if card.order == 0 else None


def _payment_method_forget(
    card: PaymentMethod, *, source: str
) -> tuple[BillingInfo | None, str | None]:
    billing_info = card.billing_info
    was_primary = card.order == 0
    card.delete()
    cards = _compact(billing_info)
    _timeline(billing_info, "card_removed", source, payment_method=card.stripe_id)
    if was_primary and cards:
        return billing_info, f"after-removal:{card.stripe_id}"
    return None, None


def checkout_setup_complete(
    *, session_id: str, billing_info: BillingInfo | None = None
) -> tuple[PaymentMethod | None, bool]:
    """Record the card a setup-mode Checkout Session collected: (the card as listed,
    whether it was on file already). With `billing_info` (the return page), a session of
    another Stripe customer is refused with LookupError."""
    stripe_customer, payment_method = gateway.checkout_session_setup_result(session_id=session_id)
    if billing_info is not None and stripe_customer != billing_info.stripe_id:
        raise LookupError(session_id)
    if payment_method is None:
        return None, False
    card = payment_method_sync(stripe_id=payment_method, source="portal")
    if card is None:  # a webhook's sync of it was running: it has recorded it by now
        card = PaymentMethod.objects.filter(stripe_id=payment_method).first()
    if card is None:  # …or found it a copy of a card on file, and detached it
        copy = Entry.objects.filter(
            kind="card_already_on_file", data__payment_method=payment_method
        )
        kept = copy.values_list("data__kept", flat=True).first()
        card = PaymentMethod.objects.filter(stripe_id=kept).first() if kept else None
    return card, card is not None and card.stripe_id != payment_method


def payment_method_move(*, card: PaymentMethod, offset: int) -> None:
    """Move a card up (offset -1) or down (+1) in the priority order."""
    with transaction.atomic():
        billing_info = BillingInfo.objects.select_for_update().get(pk=card.billing_info_id)
        cards = _compact(billing_info)
        position = next(i for i, c in enumerate(cards) if c.pk == card.pk)
        target = position + offset
        if not 0 <= target < len(cards):
            return
        cards[position], cards[target] = cards[target], cards[position]
        change = _reorder(billing_info, cards, moved=card.stripe_id)
    if change:
        _default_push(billing_info, change=change)


def payment_method_make_primary(*, card: PaymentMethod, source: str = "portal") -> None:
    """Put the card first, here and (after the commit) as Stripe's default. `source` is
    who asked: the customer, or the recovery after the card paid a failed invoice."""
    with transaction.atomic():
        billing_info = BillingInfo.objects.select_for_update().get(pk=card.billing_info_id)
        cards = [c for c in _compact(billing_info) if c.pk != card.pk]
        change = _reorder(billing_info, [card, *cards], moved=card.stripe_id, source=source)
    if change:
        _default_push(billing_info, change=change)


def _reorder(
    billing_info: BillingInfo, cards: list[PaymentMethod], *, moved: str, source: str = "portal"
) -> str | None:
    """Write the new order; returns the change to tell Stripe about when the primary card
    changed. A double click finds the card primary already and changes nothing."""
    previous_primary = billing_info.payment_methods.order_by("order").first()
    for position, card in enumerate(cards):
        card.order = position
    PaymentMethod.objects.bulk_update(cards, ["order"])
    order = [card.stripe_id for card in cards]
    if previous_primary and previous_primary.stripe_id != order[0]:
        entries = _timeline(
            billing_info,
            "card_made_primary",
            source,
            payment_method=moved,
            order=order,
        )
        # Keyed by this change and the order it made: Y, X, then Y again from one page are
        # three writes, so Stripe's default ends where ours does.
        digest = hashlib.sha256(",".join(order).encode()).hexdigest()[:16]
        return f"made-primary:{entries[0].pk if entries else 0}:{digest}"
    _timeline(
        billing_info,
        "card_reordered",
        "portal",
        payment_method=moved,
        order=order,
    )
    return None


def payment_method_removal_check(*, card: PaymentMethod) -> None:
    """Raise CannotRemoveLastCard when this is the last card and a paid plan renews with it."""
    billing_info = card.billing_info
    if billing_info.payment_methods.count() == 1 and billing_info_has_live_plan(billing_info):
        raise CannotRemoveLastCard()


def payment_method_remove(*, card: PaymentMethod) -> None:
    """Detach the card at Stripe and forget it. The last card stays while a paid plan is on."""
    billing_info = card.billing_info
    payment_method_removal_check(card=card)
    gateway.payment_method_detach(payment_method_id=card.stripe_id)
    with transaction.atomic():
        BillingInfo.objects.select_for_update().filter(pk=billing_info.pk).first()
        current = PaymentMethod.objects.select_related("billing_info").filter(pk=card.pk).first()
        told = _payment_method_forget(current, source="portal") if current else (None, None)
    if told[0] is not None and told[1] is not None:
        _default_push(told[0], change=told[1])


def billing_details_update(
    *, customer: Customer, email: str, details: gateway.BillingDetails, request_key: str
) -> None:
    """Write the billing details to Stripe; only the fact that they changed is kept here."""
    billing_info = billing_info_ensure(customer=customer, email=email)
    gateway.customer_billing_details_update(
        stripe_customer_id=billing_info.stripe_id, details=details, request_key=request_key
    )
    _timeline(billing_info, "details_updated", "portal")
