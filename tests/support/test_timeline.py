"""The support page's timeline sentences: every kind of entry the portal writes (found in
its source, so a new kind is covered too) reads as a sentence with no raw Stripe card id."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from audit.models import Entry
from billing.mirror import CardView
from licensing.services import Transition
from support.timeline import SENTENCES, entry_sentence
from tests.accounts.factories import UserFactory

APPS = ["accounts", "audit", "billing", "licensing", "support"]
# `kind="card_added"`, or `kind="a" if … else "b"`: every quoted name on the line.
KIND_LINE = re.compile(r"\bkind=(.*)")


def kinds_written() -> set[str]:
    kinds = {str(t) for t in Transition}
    for app in APPS:
        for path in (Path(settings.BASE_DIR) / app).rglob("*.py"):
            text = path.read_text()
            for line in KIND_LINE.findall(text):
                kinds.update(re.findall(r'"([a-z_]+)"', line))
            kinds.update(re.findall(r'_timeline\(\s*\w+,\s*"([a-z_]+)"', text))
    from billing.ledger import SENTENCES as BILLING

    kinds.update(BILLING)
    return kinds - {"metered", "plan", "usage", "held"}  # features' and lines' kinds


CARD = CardView(stripe_id="pm_123abc", order=0, brand="visa", last4="4242", exp_month=4,
                exp_year=2030)  # fmt: skip


def test_the_scan_finds_the_kinds_of_every_app():
    kinds = kinds_written()
    for kind in ["account_opened", "card_added", "plan_changed", "license_issued",
                 "trial_moved", "invoice_drift"]:  # fmt: skip
        assert kind in kinds


@pytest.mark.parametrize("source", ["customer", "stripe", "staff", "system"])
def test_every_kind_reads_as_a_sentence(source, db):
    staff = UserFactory(email="support@example.com", is_staff=True)
    for kind in sorted(kinds_written()):
        entry = Entry(
            kind=kind, source=source, actor=staff if source == "staff" else None,
            sentence="Card pm_123abc did something.", data={"payment_method": "pm_123abc"},
        )  # fmt: skip
        sentence = entry_sentence(entry, {"pm_123abc": CARD})
        assert sentence, kind
        assert "pm_" not in sentence, (kind, sentence)
    assert {"card_added", "card_removed", "card_made_primary"} <= SENTENCES.keys()


def test_card_sentences_say_who(db):
    staff = UserFactory(email="support@example.com", is_staff=True)
    cards = {"pm_123abc": CARD}
    added = Entry(kind="card_added", source="customer", data={"payment_method": "pm_123abc"})
    assert entry_sentence(added, cards) == "Card Visa ending 4242 added by the customer"
    removed = Entry(kind="card_removed", source="staff", actor=staff,
                    data={"payment_method": "pm_123abc"})  # fmt: skip
    assert entry_sentence(removed, cards) == "Card Visa ending 4242 removed by support@example.com"
    unknown = Entry(kind="card_added", source="stripe", data={"payment_method": "pm_gone"})
    assert entry_sentence(unknown, cards) == "A card added by Stripe"
