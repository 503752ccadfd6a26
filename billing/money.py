"""Money for people: integer minor units and a currency, formatted in one place.

Each currency's exponent (how many minor units make one major unit) is looked up here,
so a yen amount is not divided by a hundred. Babel (`babel.numbers.format_currency`) knows
every currency's exponent and each locale's way of writing it and should replace this
table once it is in the lock."""

from decimal import Decimal

# ISO 4217 exponents of the currencies Stripe settles that differ from 2, and symbols for
# the common ones; any other currency has two decimals and is written with its code.
EXPONENTS = {
    "bif": 0, "clp": 0, "djf": 0, "gnf": 0, "jpy": 0, "kmf": 0, "krw": 0, "mga": 0,
    "pyg": 0, "rwf": 0, "ugx": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0, "xpf": 0,
    "bhd": 3, "jod": 3, "kwd": 3, "omr": 3, "tnd": 3,
}  # fmt: skip
SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£", "jpy": "¥", "chf": "CHF "}


def currency_exponent(currency: str) -> int:
    return EXPONENTS.get(currency.lower(), 2)


def money_format(amount: int | None, currency: str) -> str:
    """`4900, "eur"` → "€49.00"; `500, "jpy"` → "¥500"; `-125, "sek"` → "-1.25 SEK"."""
    if amount is None:
        return ""
    exponent = currency_exponent(currency)
    value = Decimal(abs(amount)).scaleb(-exponent)
    digits = f"{value:,.{exponent}f}"
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency.lower())
    if symbol:
        return f"{sign}{symbol}{digits}"
    return f"{sign}{digits} {currency.upper()}".strip()
