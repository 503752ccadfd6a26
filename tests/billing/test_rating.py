"""The rating rules on plain values: included amounts, per-unit and per-block prices, the
hard cap, proration by the time held (short and long months, a daylight-saving change),
and the one rounding rule applied once per line."""

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from billing.rating import (
    Price,
    Span,
    held_rate,
    money_round,
    spans_from_events,
    usage_rate,
)

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Fraction(0), 0),
        (Fraction(1, 3), 0),
        (Fraction(1, 2), 1),
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),
        (Fraction(-1, 2), -1),
        (Fraction(-5, 2), -3),
        (Fraction(1000, 3), 333),
        (Fraction(2000, 3), 667),
        (Fraction(249_999, 1000), 250),
    ],
)
def test_money_is_rounded_half_away_from_zero(value, rounded):
    assert money_round(value) == rounded


PRO_API_CALLS = Price(unit_amount=200, included=100_000, per=10_000, limit=1_000_000)


@pytest.mark.parametrize(
    ("used", "quantity", "blocks", "amount"),
    [
        (0, 0, 0, 0),
        (99_999, 0, 0, 0),
        (100_000, 0, 0, 0),
        (100_001, 1, 1, 200),  # a started block is billed whole
        (110_000, 10_000, 1, 200),
        (110_001, 10_001, 2, 400),
        (145_000, 45_000, 5, 1000),
        (1_000_000, 900_000, 90, 18_000),
        (5_000_000, 900_000, 90, 18_000),  # nothing past the hard cap is billed
    ],
)
def test_use_beyond_the_included_is_billed_per_started_block(used, quantity, blocks, amount):
    rated = usage_rate(used=used, price=PRO_API_CALLS)
    assert (rated.quantity, rated.blocks, rated.amount) == (quantity, blocks, amount)


@pytest.mark.parametrize(
    ("price", "used", "amount"),
    [
        (Price(unit_amount=3), 7, 21),  # per unit, nothing included
        (Price(unit_amount=3, included=5), 7, 6),
        (Price(unit_amount=3, included=10, limit=5), 7, 0),  # the cap below the included
        (Price(unit_amount=0, included=1), 7, 0),
    ],
)
def test_per_unit_prices(price, used, amount):
    assert usage_rate(used=used, price=price).amount == amount


@pytest.mark.parametrize("bad", [{"unit_amount": -1}, {"unit_amount": 1, "per": 0}])
def test_a_price_must_make_sense(bad):
    with pytest.raises(ValueError, match="Not a price"):
        Price(**bad)


def day(year, month, day_, hour=0, tz=UTC) -> datetime:
    return datetime(year, month, day_, hour, tzinfo=tz)


EXTRA_PROJECT = Price(unit_amount=500, included=3)


def three_held_all_along(start) -> list[Span]:
    return [Span(f"proj_{n}", start - timedelta(days=40), None) for n in range(3)]


@pytest.mark.parametrize(
    ("start", "end", "attached", "days_held", "amount"),
    [
        # The example: an extra project attached on day 10 of a 30-day cycle (at
        # the start of the 11th day) is billed for the 20 days held: 20/30 of €5.00.
        (day(2026, 4, 1), day(2026, 5, 1), day(2026, 4, 11), 20, 333),
        (day(2026, 2, 1), day(2026, 3, 1), day(2026, 2, 15), 14, 250),  # 28 days
        (day(2028, 2, 1), day(2028, 3, 1), day(2028, 2, 15), 15, 259),  # 29: 15/29 of 500
        (day(2026, 1, 1), day(2026, 2, 1), day(2026, 1, 11), 21, 339),  # 31: 21/31 of 500
        (day(2026, 1, 1), day(2026, 2, 1), day(2026, 1, 1), 31, 500),  # the whole cycle
        (day(2026, 1, 1), day(2026, 2, 1), day(2025, 12, 20), 31, 500),  # since before it
    ],
)
def test_a_resource_beyond_the_included_is_billed_for_the_share_of_the_cycle_held(
    start, end, attached, days_held, amount
):
    spans = [*three_held_all_along(start), Span("proj_extra", attached, None)]
    rated = held_rate(spans=spans, start=start, end=end, price=EXTRA_PROJECT)
    assert rated.quantity == days_held * 86_400
    assert rated.amount == amount


def test_a_cycle_over_a_daylight_saving_change_is_measured_in_real_seconds():
    """A Paris month from 1 March to 1 April 2026 is 743 hours (the clocks go forward on
    29 March); a resource held over that night from midnight to midnight is 23 hours."""
    start, end = day(2026, 3, 1, tz=PARIS), day(2026, 4, 1, tz=PARIS)
    assert (end - start) == timedelta(days=31)  # naive wall-clock arithmetic would say so
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=743)
    spans = [Span("proj_1", day(2026, 3, 29, tz=PARIS), day(2026, 3, 30, tz=PARIS))]
    rated = held_rate(spans=spans, start=start, end=end, price=Price(unit_amount=74_300))
    assert rated.quantity == 23 * 3600
    assert rated.amount == 2300
    assert rated.blocks == Fraction(23, 743)


def test_money_is_rounded_once_per_line_not_per_resource():
    """Three resources each held a third of the cycle at €1.00: 33.33 cents each, which
    rounded one by one would make 99 cents; the line rounds once, to 100."""
    start, end = day(2026, 4, 1), day(2026, 5, 1)
    spans = [
        Span("a", day(2026, 4, 1), day(2026, 4, 11)),
        Span("b", day(2026, 4, 11), day(2026, 4, 21)),
        Span("c", day(2026, 4, 21), None),
    ]
    assert held_rate(spans=spans, start=start, end=end, price=Price(unit_amount=100)).amount == (
        100
    )


def test_only_the_time_beyond_the_included_number_is_billed_and_never_past_the_cap():
    start, end = day(2026, 4, 1), day(2026, 5, 1)
    spans = [
        Span("a", day(2026, 3, 1), None),  # all cycle
        Span("b", day(2026, 4, 1), day(2026, 4, 16)),  # 15 days
        Span("c", day(2026, 4, 6), day(2026, 4, 26)),  # 20 days, 10 of them with b
        Span("d", day(2026, 4, 11), day(2026, 4, 21)),  # 10 days, with b and c
    ]
    # Included 1: the excess over time is b + c + d = 45 resource-days.
    rated = held_rate(spans=spans, start=start, end=end, price=Price(unit_amount=3000, included=1))
    assert (rated.quantity, rated.amount) == (45 * 86_400, 4500)
    # A hard cap of 2 held: at most one beyond the included at any moment (25 days of it).
    capped = held_rate(
        spans=spans, start=start, end=end, price=Price(unit_amount=3000, included=1, limit=2)
    )
    assert (capped.quantity, capped.amount) == (25 * 86_400, 2500)


def test_spans_from_the_ledger_reattached_and_still_held():
    events = [
        ("a", "attach", day(2026, 4, 1)),
        ("b", "attach", day(2026, 4, 2)),
        ("a", "detach", day(2026, 4, 3)),
        ("a", "attach", day(2026, 4, 5)),
    ]
    assert spans_from_events(events) == [
        Span("a", day(2026, 4, 1), day(2026, 4, 3)),
        Span("b", day(2026, 4, 2), None),
        Span("a", day(2026, 4, 5), None),
    ]


def test_what_was_detached_before_the_cycle_costs_nothing():
    start, end = day(2026, 4, 1), day(2026, 5, 1)
    spans = [Span("a", day(2026, 3, 1), day(2026, 3, 20)), Span("b", day(2026, 5, 1), None)]
    assert held_rate(spans=spans, start=start, end=end, price=Price(unit_amount=500)).amount == 0


def test_a_held_price_is_per_unit_and_a_cycle_has_a_length():
    with pytest.raises(ValueError, match="per unit"):
        held_rate(spans=[], start=day(2026, 4, 1), end=day(2026, 5, 1), price=Price(1, per=2))
    with pytest.raises(ValueError, match="ends after"):
        held_rate(spans=[], start=day(2026, 4, 1), end=day(2026, 4, 1), price=Price(1))
