"""`{{ amount|money:currency }}`: integer minor units shown as money, e.g. €49.00."""

from django import template

from billing_portal.money import money_format

register = template.Library()


@register.filter
def money(amount: int | None, currency: str = "") -> str:
    return money_format(amount, currency)
