"""dj-stripe's mirror of Stripe, read through `stripe_data` (several of dj-stripe's typed
properties are wrong for the pinned API version) and filled only through dj-stripe's own
sync. Pages read cards from here, so rendering them asks Stripe nothing."""

import logging
import random
import time
from dataclasses import dataclass

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import ProtectedError
from djstripe import models as djstripe_models

from . import gateway
from .models import PaymentMethod

logger = logging.getLogger(__name__)

# dj-stripe's model for each Stripe object type the portal mirrors.
MODELS = {
    "account": djstripe_models.Account,
    "charge": djstripe_models.Charge,
    "checkout.session": djstripe_models.Session,
    "customer": djstripe_models.Customer,
    "invoice": djstripe_models.Invoice,
    "invoiceitem": djstripe_models.InvoiceItem,
    "payment_intent": djstripe_models.PaymentIntent,
    "payment_method": djstripe_models.PaymentMethod,
    "price": djstripe_models.Price,
    "product": djstripe_models.Product,
    "setup_intent": djstripe_models.SetupIntent,
    "subscription": djstripe_models.Subscription,
    "tax_id": djstripe_models.TaxId,
}
# dj-stripe pages through these objects' lists, so it wants stripe-python's objects;
# the others it takes as plain JSON (the shape webhooks give).
AS_STRIPE_OBJECTS = {"subscription", "invoice", "customer", "checkout.session"}
# Objects dj-stripe may fetch while mirroring one (its customer, its price's product…).
MAX_DEPENDENCIES = 30
# Tries after a collision with a concurrent mirror of a related object.
MAX_COLLISIONS = 3


@dataclass(frozen=True)
class CardView:
    stripe_id: str
    order: int
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None

    @property
    def is_primary(self) -> bool:
        return self.order == 0


def object_mirror(stripe_object: dict) -> None:
    """Bring an object just fetched from Stripe (plain JSON, the shape webhooks give:
    dj-stripe tests nested values with isinstance(dict)) into dj-stripe's mirror.

    dj-stripe fetches what the object refers to and is not mirrored yet (its customer, the
    account, a product's features) inside its own transaction; here each such request is
    stopped, made outside any transaction, and the mirroring run again with the answers
    served from memory. Types the portal does not mirror are skipped."""
    model = MODELS.get(stripe_object.get("object", ""))
    if model is None:
        return
    if stripe_object["object"] in AS_STRIPE_OBJECTS:
        stripe_object = gateway.as_stripe_object(stripe_object)
    answers: dict = {}
    collisions = 0
    for _ in range(MAX_DEPENDENCIES):
        try:
            with gateway.mirroring(answers) as stopped:
                model.sync_from_stripe_data(stripe_object)
        except gateway.MirrorNeedsObject:
            pass  # the request that ended the pass is in `stopped`
        except (IntegrityError, OperationalError):
            # dj-stripe inserts an object and what it refers to in one transaction, so two
            # concurrent mirrors (a customer's, its card's) can collide or deadlock on
            # PostgreSQL. Its transaction was rolled back; the next try finds the rows.
            collisions += 1
            if collisions > MAX_COLLISIONS or connection.in_atomic_block:
                raise
            time.sleep(random.uniform(0.01, 0.05) * collisions)  # noqa: S311 - jitter only
            continue
        # Every request stopped: the one that ended the pass, and those dj-stripe caught
        # the error of and went on without. Made now; the mirroring runs again with them.
        missed = {needed.key: needed for needed in stopped if needed.key not in answers}
        if not missed:
            return
        for key, needed in missed.items():
            answers[key] = gateway.mirror_request_answer(needed)
    raise gateway.BillingError("Too many objects to mirror for one Stripe object.")


def object_forget(*, object_type: str, object_id: str) -> None:
    """Stripe no longer has the object: it leaves the mirror, unless mirrored objects still
    point at it (a product its prices name), which keep it."""
    model = MODELS.get(object_type)
    if model is None:
        return
    try:
        with transaction.atomic():
            model.objects.filter(id=object_id).delete()
    except ProtectedError:
        logger.info("Kept %s %s in the mirror: other objects refer to it", object_type, object_id)


def payment_method_mirror(stripe_payment_method: dict) -> None:
    object_mirror(stripe_payment_method)


def price_mirror(stripe_price: dict) -> None:
    object_mirror(stripe_price)


def cards_for_display(cards: list[PaymentMethod]) -> list[CardView]:
    """Our cards in order, with brand, last 4 and expiry from the mirror: two queries,
    however many cards."""
    mirrored = {
        pm.id: pm.stripe_data.get("card") or {}
        for pm in djstripe_models.PaymentMethod.objects.filter(
            id__in=[card.stripe_id for card in cards]
        ).only("id", "stripe_data")
    }
    return [
        CardView(
            stripe_id=card.stripe_id,
            order=card.order,
            brand=(mirrored.get(card.stripe_id, {}).get("brand") or "card"),
            last4=mirrored.get(card.stripe_id, {}).get("last4") or "····",
            exp_month=mirrored.get(card.stripe_id, {}).get("exp_month"),
            exp_year=mirrored.get(card.stripe_id, {}).get("exp_year"),
        )
        for card in cards
    ]


def card_label(payment_method: str) -> str:
    """ "Visa ending 4242", for timelines and emails, from the mirror."""
    if not payment_method:
        return "no card"
    shown = cards_for_display(list(PaymentMethod.objects.filter(stripe_id=payment_method)))
    if not shown:
        return "a card no longer on file"
    return f"{shown[0].brand.title()} ending {shown[0].last4}"
