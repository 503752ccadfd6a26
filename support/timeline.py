"""The timeline in plain sentences for the support page: who did it ("by the customer",
"by Stripe", "by support@example.com") and cards by brand and last four instead of pm_
ids. Every kind the apps write has its sentence here; a kind added later falls back to the
sentence stored with the entry, which is written for people too."""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from audit.models import Entry
from billing.mirror import CardView

Source = Entry.Source
# Stripe's object ids as they may appear in a stored sentence.
STRIPE_ID = re.compile(r"\b(?:pm|cus|sub|in|ii|evt|pi|ch|seti|cs)_[A-Za-z0-9]+\b")


@dataclass(frozen=True)
class TimelineItem:
    created_at: datetime
    kind: str
    source: str
    sentence: str
    failed: bool


def card_words(stripe_id: str | None, cards: dict[str, CardView]) -> str:
    """ "Card Visa ending 4242", or "A card" when the mirror does not know it."""
    card = cards.get(stripe_id or "")
    if card is None:
        return "A card"
    return f"Card {card.brand.title()} ending {card.last4}"


def _card_inline(stripe_id: str, cards: dict[str, CardView]) -> str:
    card = cards.get(stripe_id)
    return f"{card.brand.title()} ending {card.last4}" if card else "a card"


def by_whom(entry: Entry) -> str:
    if entry.source == Source.CUSTOMER:
        return "by the customer"
    if entry.source == Source.STRIPE:
        return "by Stripe"
    if entry.source == Source.STAFF:
        return f"by {entry.actor.email}" if entry.actor else "by staff"
    return "by the portal"


def _stored(entry: Entry, cards: dict[str, CardView]) -> str:
    """The stored sentence, with any Stripe id of a known card in words."""
    return STRIPE_ID.sub(
        lambda match: (
            card_words(match.group(0), cards) if match.group(0) in cards else match.group(0)
        ),
        entry.sentence,
    ).rstrip(".")


def _card(verb: str) -> Callable[[Entry, dict[str, CardView]], str]:
    def sentence(entry: Entry, cards: dict[str, CardView]) -> str:
        card = card_words(entry.data.get("payment_method"), cards)
        return f"{card} {verb} {by_whom(entry)}"

    return sentence


def _with_whom(entry: Entry, cards: dict[str, CardView]) -> str:
    return f"{_stored(entry, cards)}, {by_whom(entry)}"


def _as_stored(entry: Entry, cards: dict[str, CardView]) -> str:
    return _stored(entry, cards)


SENTENCES: dict[str, Callable[[Entry, dict[str, CardView]], str]] = {
    # accounts
    "account_opened": _with_whom,
    # licensing
    "license_issued": _with_whom,
    "trial_moved": _with_whom,
    # billing
    "stripe_customer_created": lambda e, c: f"Billing account opened at Stripe {by_whom(e)}",
    "card_added": _card("added"),
    "card_removed": _card("removed"),
    "card_made_primary": _card("made primary"),
    "card_reordered": lambda e, c: f"Cards reordered {by_whom(e)}",
    "card_already_on_file": lambda e, c: (
        f"{card_words(e.data.get('kept'), c)} entered again {by_whom(e)}: it was already "
        "on file, so the copy was removed"
    ),
    "details_updated": lambda e, c: f"Billing details updated {by_whom(e)}",
    "plan_activated": _with_whom,
    "plan_changed": _with_whom,
    "cancellation_scheduled": _with_whom,
    "cancellation_withdrawn": _with_whom,
    "subscription_ended": _with_whom,
    "stripe_customer_gone": _with_whom,
    "subscription_gone": _with_whom,
    "invoice_drift": _as_stored,
    "invoice_drift_cleared": _as_stored,
}


def entry_sentence(entry: Entry, cards: dict[str, CardView]) -> str:
    """One entry as a plain sentence. Staff actions (support_…) are written whole when
    they happen: what, by whom, why."""
    if entry.kind.startswith("support_"):
        return _stored(entry, cards)
    render = SENTENCES.get(entry.kind)
    if render is None:
        return _stored(entry, cards)
    return render(entry, cards)


def card_ids_named(entries: Iterable[Entry]) -> set[str]:
    """The payment methods the entries name, to look their brand and last four up at once."""
    named = set()
    for entry in entries:
        for key in ("payment_method", "kept"):
            value = entry.data.get(key)
            if isinstance(value, str):
                named.add(value)
        named.update(STRIPE_ID.findall(entry.sentence))
    return {stripe_id for stripe_id in named if stripe_id.startswith("pm_")}


def timeline_items(entries: list[Entry], cards: dict[str, CardView]) -> list[TimelineItem]:
    return [
        TimelineItem(
            created_at=entry.created_at,
            kind=entry.kind,
            source=entry.source,
            sentence=entry_sentence(entry, cards),
            failed=entry.data.get("outcome") == "failed",
        )
        for entry in entries
    ]
