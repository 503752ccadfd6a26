"""Stripe's test payment method tokens and how each card behaves when charged."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatedCard:
    brand: str
    last4: str
    funding: str = "credit"
    decline_code: str | None = None  # charges fail with this code
    declines_on_attach: bool = False  # only the "customer fail" card attaches, then declines

    @property
    def decline_message(self) -> str:
        if self.decline_code == "insufficient_funds":
            return "Your card has insufficient funds."
        return "Your card was declined."


SIMULATED_CARDS: dict[str, SimulatedCard] = {
    "visa": SimulatedCard("visa", "4242"),
    "visa_debit": SimulatedCard("visa", "5556", funding="debit"),
    "mastercard": SimulatedCard("mastercard", "4444"),
    "amex": SimulatedCard("amex", "8431"),
    "discover": SimulatedCard("discover", "1117"),
    "diners": SimulatedCard("diners", "0004"),
    "jcb": SimulatedCard("jcb", "0505"),
    "unionpay": SimulatedCard("unionpay", "0005"),
    "mastercard_debit": SimulatedCard("mastercard", "8210", funding="debit"),
    "mastercard_prepaid": SimulatedCard("mastercard", "5100", funding="prepaid"),
    "chargeDeclined": SimulatedCard(
        "visa", "0002", decline_code="generic_decline", declines_on_attach=True
    ),
    "chargeDeclinedInsufficientFunds": SimulatedCard(
        "visa", "9995", decline_code="insufficient_funds", declines_on_attach=True
    ),
    "chargeCustomerFail": SimulatedCard("visa", "0341", decline_code="generic_decline"),
}

# Offered on the hosted Checkout page, in this order.
PAGE_TOKENS = (
    ("pm_card_visa", "Visa 4242 — succeeds"),
    ("pm_card_mastercard", "Mastercard 4444 — succeeds"),
    ("pm_card_chargeDeclined", "Visa 0002 — declined"),
    ("pm_card_chargeDeclinedInsufficientFunds", "Visa 9995 — insufficient funds"),
    ("pm_card_chargeCustomerFail", "Visa 0341 — attaches, then declines"),
)


def card_name(token: str) -> str | None:
    """``pm_card_visa`` or ``tok_visa`` → ``visa``; anything else → None."""
    for prefix in ("pm_card_", "tok_"):
        if token.startswith(prefix) and token[len(prefix) :] in SIMULATED_CARDS:
            return token[len(prefix) :]
    return None


def card_for_token(token: str) -> SimulatedCard | None:
    """``pm_card_visa`` or ``tok_visa`` → the visa test card; anything else → None."""
    name = card_name(token)
    return SIMULATED_CARDS[name] if name else None
