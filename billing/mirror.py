"""dj-stripe's mirror of Stripe, read through `stripe_data` (several of dj-stripe's typed
properties are wrong for the pinned API version) and filled only through dj-stripe's own
sync. Pages read cards from here, so rendering them asks Stripe nothing."""

from dataclasses import dataclass

from djstripe import models as djstripe_models

from .models import PaymentMethod


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


def payment_method_mirror(stripe_payment_method: dict) -> None:
    """Bring a payment method, just fetched from Stripe (as plain JSON, the shape webhooks
    give: dj-stripe tests nested values with isinstance(dict)), into dj-stripe's mirror."""
    djstripe_models.PaymentMethod.sync_from_stripe_data(stripe_payment_method)


def price_mirror(stripe_price: dict) -> None:
    djstripe_models.Price.sync_from_stripe_data(stripe_price)


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
