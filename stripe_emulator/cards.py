"""Stripe's test payment method tokens, its card decline codes, and how each card behaves
when charged."""

from __future__ import annotations

from dataclasses import dataclass

# Stripe's card decline codes (docs.stripe.com/declines/codes), each with the ``message`` its
# API answers and the error ``code`` it comes with. The codes page documents a description
# and next steps per code, not the message: the messages are those Stripe's API gives (its
# card error codes' wording for the five codes that are also error codes, "Your card was
# declined." otherwise: Stripe does not tell a customer that a card is reported lost or
# stolen, or suspected of fraud).
DECLINED = "Your card was declined."
DECLINE_CODES: dict[str, tuple[str, str]] = {
    "authentication_required": (
        "Your card was declined. This transaction requires authentication.",
        "card_declined",
    ),
    "approve_with_id": (DECLINED, "card_declined"),
    "call_issuer": (DECLINED, "card_declined"),
    "card_not_supported": ("Your card does not support this type of purchase.", "card_declined"),
    "card_velocity_exceeded": (
        "Your card was declined for making repeated attempts too frequently or exceeding its "
        "amount limit.",
        "card_declined",
    ),
    "currency_not_supported": ("Your card does not support this currency.", "card_declined"),
    "do_not_honor": (DECLINED, "card_declined"),
    "do_not_try_again": (DECLINED, "card_declined"),
    "duplicate_transaction": (DECLINED, "card_declined"),
    "expired_card": ("Your card has expired.", "expired_card"),
    "fraudulent": (DECLINED, "card_declined"),
    "generic_decline": (DECLINED, "card_declined"),
    "incorrect_number": ("Your card number is incorrect.", "incorrect_number"),
    "incorrect_cvc": ("Your card's security code is incorrect.", "incorrect_cvc"),
    "incorrect_pin": (DECLINED, "card_declined"),
    "incorrect_zip": ("Your card's zip code failed validation.", "incorrect_zip"),
    "insufficient_funds": ("Your card has insufficient funds.", "card_declined"),
    "invalid_account": (DECLINED, "card_declined"),
    "invalid_amount": (DECLINED, "card_declined"),
    "invalid_cvc": ("Your card's security code is invalid.", "card_declined"),
    "invalid_expiry_month": ("Your card's expiration month is invalid.", "card_declined"),
    "invalid_expiry_year": ("Your card's expiration year is invalid.", "card_declined"),
    "invalid_number": ("Your card number is invalid.", "card_declined"),
    "invalid_pin": (DECLINED, "card_declined"),
    "issuer_not_available": (DECLINED, "card_declined"),
    "lost_card": (DECLINED, "card_declined"),
    "merchant_blacklist": (DECLINED, "card_declined"),
    "new_account_information_available": (DECLINED, "card_declined"),
    "no_action_taken": (DECLINED, "card_declined"),
    "not_permitted": (DECLINED, "card_declined"),
    "offline_pin_required": (DECLINED, "card_declined"),
    "online_or_offline_pin_required": (DECLINED, "card_declined"),
    "pickup_card": (DECLINED, "card_declined"),
    "pin_try_exceeded": (DECLINED, "card_declined"),
    "processing_error": (
        "An error occurred while processing your card. Try again in a little bit.",
        "processing_error",
    ),
    "reenter_transaction": (DECLINED, "card_declined"),
    "restricted_card": (DECLINED, "card_declined"),
    "revocation_of_all_authorizations": (DECLINED, "card_declined"),
    "revocation_of_authorization": (DECLINED, "card_declined"),
    "security_violation": (DECLINED, "card_declined"),
    "service_not_allowed": (DECLINED, "card_declined"),
    "stolen_card": (DECLINED, "card_declined"),
    "stop_payment_order": (DECLINED, "card_declined"),
    "testmode_decline": (DECLINED, "card_declined"),
    "transaction_not_allowed": (DECLINED, "card_declined"),
    "try_again_later": (DECLINED, "card_declined"),
    "withdrawal_count_limit_exceeded": (DECLINED, "card_declined"),
}


def decline_message(decline_code: str) -> str:
    return DECLINE_CODES.get(decline_code, (DECLINED, ""))[0]


def decline_error_code(decline_code: str) -> str:
    """The error's ``code``: ``card_declined``, or the decline code itself for the declines
    Stripe answers with their own error code (``expired_card``, ``incorrect_cvc``, …)."""
    return DECLINE_CODES.get(decline_code, ("", "card_declined"))[1]


@dataclass(frozen=True)
class SimulatedCard:
    brand: str
    last4: str
    funding: str = "credit"
    decline_code: str | None = None  # charges fail with this code
    declines_on_attach: bool = False  # the declining cards cannot be saved either
    requires_action: bool = False  # every charge needs 3-D Secure authentication

    @property
    def decline_message(self) -> str:
        return decline_message(self.decline_code or "generic_decline")


def _declining(last4: str, code: str) -> SimulatedCard:
    return SimulatedCard("visa", last4, decline_code=code, declines_on_attach=True)


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
    # Stripe's "Declined payments" test cards: each is refused when attached and charged.
    "chargeDeclined": _declining("0002", "generic_decline"),
    "chargeDeclinedInsufficientFunds": _declining("9995", "insufficient_funds"),
    "chargeDeclinedLostCard": _declining("9987", "lost_card"),
    "chargeDeclinedStolenCard": _declining("9979", "stolen_card"),
    "chargeDeclinedExpiredCard": _declining("0069", "expired_card"),
    "chargeDeclinedIncorrectCvc": _declining("0127", "incorrect_cvc"),
    "chargeDeclinedProcessingError": _declining("0119", "processing_error"),
    "chargeDeclinedVelocityLimitExceeded": _declining("6975", "card_velocity_exceeded"),
    # 4100 0000 0000 0019: Radar blocks every payment as fraudulent.
    "chargeDeclinedFraudulent": _declining("0019", "fraudulent"),
    # 4000 0000 0000 0341: attaches, then every charge fails.
    "chargeCustomerFail": SimulatedCard("visa", "0341", decline_code="generic_decline"),
    # 4000 0027 6000 3184: attaches; every payment needs authentication, on or off session.
    "authenticationRequired": SimulatedCard("visa", "3184", requires_action=True),
}

# Stripe's docs spell some tokens with the brand too (``pm_card_visa_chargeDeclinedLostCard``).
ALIASES = {
    "visa_chargeDeclined": "chargeDeclined",
    "visa_chargeDeclinedInsufficientFunds": "chargeDeclinedInsufficientFunds",
    "visa_chargeDeclinedLostCard": "chargeDeclinedLostCard",
    "visa_chargeDeclinedStolenCard": "chargeDeclinedStolenCard",
    "visa_chargeDeclinedVelocityLimitExceeded": "chargeDeclinedVelocityLimitExceeded",
    "radarBlock": "chargeDeclinedFraudulent",
}

# Offered on the hosted Checkout and invoice pages, in this order.
PAGE_TOKENS = (
    ("pm_card_visa", "Visa 4242 — succeeds"),
    ("pm_card_mastercard", "Mastercard 4444 — succeeds"),
    ("pm_card_authenticationRequired", "Visa 3184 — requires authentication"),
    ("pm_card_chargeDeclined", "Visa 0002 — declined"),
    ("pm_card_chargeDeclinedInsufficientFunds", "Visa 9995 — insufficient funds"),
    ("pm_card_chargeDeclinedExpiredCard", "Visa 0069 — expired card"),
    ("pm_card_chargeDeclinedLostCard", "Visa 9987 — lost card"),
    ("pm_card_chargeDeclinedProcessingError", "Visa 0119 — processing error"),
    ("pm_card_chargeCustomerFail", "Visa 0341 — attaches, then declines"),
)


def card_name(token: str) -> str | None:
    """``pm_card_visa`` or ``tok_visa`` → ``visa``; anything else → None."""
    for prefix in ("pm_card_", "tok_"):
        if token.startswith(prefix):
            name = token[len(prefix) :]
            name = ALIASES.get(name, name)
            if name in SIMULATED_CARDS:
                return name
    return None


def card_for_token(token: str) -> SimulatedCard | None:
    """``pm_card_visa`` or ``tok_visa`` → the visa test card; anything else → None."""
    name = card_name(token)
    return SIMULATED_CARDS[name] if name else None
