"""Money for people: each currency's exponent, never a blind division by a hundred."""

import pytest
from django.template import Context, Template

from billing_portal.money import currency_exponent, money_format


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (4900, "eur", "€49.00"),
        (4900, "EUR", "€49.00"),
        (123_456_789, "usd", "$1,234,567.89"),
        (5, "gbp", "£0.05"),
        (-125, "eur", "-€1.25"),
        (500, "jpy", "¥500"),  # no minor unit
        (1_234, "krw", "₩1,234"),  # no minor unit
        (1_234, "kwd", "KWD1.234"),  # three decimals
        (1_999, "sek", "SEK19.99"),
        (0, "eur", "€0.00"),
        (None, "eur", ""),
    ],
)
def test_money_is_written_with_the_currencys_exponent(amount, currency, shown):
    assert money_format(amount, currency) == shown


@pytest.mark.parametrize(
    ("currency", "exponent"), [("eur", 2), ("usd", 2), ("jpy", 0), ("krw", 0), ("kwd", 3)]
)
def test_each_currency_has_its_exponent(currency, exponent):
    assert currency_exponent(currency) == exponent


def test_the_template_filter_uses_the_same_function():
    html = Template("{% load money %}{{ a|money:'jpy' }} {{ b|money:'eur' }}").render(
        Context({"a": 1500, "b": 1500})
    )
    assert html == "¥1,500 €15.00"
