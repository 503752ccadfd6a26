"""Money for people, in one place: integer minor units and a currency in, text out.

Babel knows each currency's exponent from the Unicode CLDR (a yen amount is not divided by
a hundred, a dinar's by a thousand) and each locale's way of writing it."""

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision
from django.utils import translation

DEFAULT_LOCALE = "en"


def currency_exponent(currency: str) -> int:
    """How many minor units make one major unit: 2 for EUR, 0 for JPY, 3 for KWD."""
    return get_currency_precision(currency.upper())


def money_format(amount: int | None, currency: str) -> str:
    """`4900, "eur"` → "€49.00"; `500, "jpy"` → "¥500"; None → ""."""
    if amount is None:
        return ""
    code = currency.upper()
    value = Decimal(amount).scaleb(-currency_exponent(code))
    locale = translation.to_locale(translation.get_language() or DEFAULT_LOCALE)
    return format_currency(value, code, locale=locale)
