"""Which card declines are final: charging the same card again cannot succeed, so the
customer's next card is tried. Anything not listed (insufficient funds, a generic or
"do not honor" decline, a processing error, a timeout) may succeed on a later attempt of
the same card, or may even have been charged: it never moves the payment to another card.

Source: Stripe's decline codes, https://docs.stripe.com/declines/codes (the "Next steps"
column of each code, quoted in short below); Stripe's Smart Retries do not retry a "hard
decline" either (https://docs.stripe.com/billing/revenue-recovery/smart-retries)."""

FINAL_DECLINE_CODES: dict[str, str] = {
    # "The card has expired." → "The customer should use another card."
    "expired_card": "the card has expired",
    # "The payment was declined because the card is reported lost/stolen." → shown to the
    # customer as a generic decline; the card will not be approved again.
    "lost_card": "the card is reported lost",
    "stolen_card": "the card is reported stolen",
    # "The customer can't use this card to make this payment (it's possible it was
    # reported lost or stolen)." → "They need to contact their card issuer."
    "pickup_card": "the card cannot be used (reported lost or stolen)",
    "restricted_card": "the card cannot be used (reported lost or stolen)",
    # "Stripe suspects that it's fraudulent." → do not report more to the customer.
    "fraudulent": "the payment was refused as possibly fraudulent",
    "merchant_blacklist": "the payment matches a value on the account's block list",
    # "The card was declined for an unknown reason." → the issuer says not to try again.
    "do_not_try_again": "the card issuer asks not to try again",
    # "The card, or account the card is connected to, is invalid." → contact the issuer.
    "invalid_account": "the card or its account is invalid",
    "new_account_information_available": "the card or its account is invalid",
    # The card's saved details are wrong: the same saved card sends them again.
    "incorrect_number": "the card number is incorrect",
    "invalid_number": "the card number is incorrect",
    "incorrect_cvc": "the security code is incorrect",
    "invalid_cvc": "the security code is incorrect",
    "invalid_expiry_month": "the expiry month is invalid",
    "invalid_expiry_year": "the expiry year is invalid",
    # "The card doesn't support this type of purchase / the specified currency."
    "card_not_supported": "the card does not support this purchase",
    "currency_not_supported": "the card does not support this currency",
    # "The customer stopped this payment / all payments for this card."
    "stop_payment_order": "the customer stopped payments with this card",
    "revocation_of_authorization": "the customer stopped payments with this card",
    "revocation_of_all_authorizations": "the customer stopped payments with this card",
}

# Not a decline: the bank wants the customer to authenticate (3-D Secure). The hosted
# invoice page lets them; no other card is tried meanwhile. `pay` answers the second
# (https://docs.stripe.com/error-codes/invoice-payment-intent-requires-action); a charge
# declined as needing it carries the first as its decline code.
AUTHENTICATION_CODES = frozenset(
    {"authentication_required", "invoice_payment_intent_requires_action"}
)


def decline_is_final(decline_code: str | None) -> bool:
    return bool(decline_code) and decline_code in FINAL_DECLINE_CODES


# What a round's trigger records when Stripe's attempt needed authentication.
AUTHENTICATION = "authentication_required"


def decline_reason(decline_code: str) -> str:
    """For people: why a card was declined, without what Stripe says not to tell."""
    if decline_code in ("lost_card", "stolen_card", "fraudulent", "pickup_card"):
        return "the card's bank refused it"
    if decline_code in FINAL_DECLINE_CODES:
        return FINAL_DECLINE_CODES[decline_code]
    if decline_code == AUTHENTICATION:
        return "the bank asks you to confirm the payment"
    if decline_code == "insufficient_funds":
        return "insufficient funds"
    return "the bank gave no reason"
