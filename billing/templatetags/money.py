"""`{{ amount|money:currency }}`: integer minor units shown as money, e.g. €49.00."""

from decimal import Decimal

from django import template

register = template.Library()

SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£"}


@register.filter
def money(amount: int | None, currency: str = "") -> str:
    if amount is None:
        return ""
    value = Decimal(amount) / 100
    sign = "-" if value < 0 else ""
    symbol = SYMBOLS.get(currency.lower())
    if symbol:
        return f"{sign}{symbol}{abs(value):,.2f}"
    return f"{sign}{abs(value):,.2f} {currency.upper()}".strip()
