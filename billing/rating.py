"""Rating: what use and held resources cost in one billing cycle, on plain values (no
database, no Stripe), so the rules are in one place and tested alone.

The rules, stated once:
- Use beyond what the plan includes is billed per block of `per` units; a started block is
  billed whole. Nothing beyond the hard cap (`limit`) is billed.
- A held resource beyond what is included costs `unit_amount` for a whole cycle, and the
  share of it for the share of the cycle held, measured in seconds between UTC instants
  (so a daylight-saving change or a short month changes nothing but the real length).
  A resource still held counts until the cycle's end, so a line's figure changes only when
  something is attached or detached, not with every passing minute.
- Money is exact fractions until the end of a line, then rounded once, half up, to the
  currency's minor unit (`money_round`): never rounded per resource or per day.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from math import ceil, floor


def money_round(value: Fraction) -> int:
    """The one rounding rule: to the nearest minor unit, halves away from zero."""
    magnitude = floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


@dataclass(frozen=True)
class Price:
    """A feature's price in a plan: `unit_amount` minor units per `per` units beyond
    `included`, never beyond `limit`."""

    unit_amount: int
    included: int = 0
    per: int = 1
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.unit_amount < 0 or self.included < 0 or self.per < 1:
            raise ValueError(f"Not a price: {self}")


@dataclass(frozen=True)
class Rated:
    """One line's figures: `quantity` is what is billed (units beyond the included, or
    resource-seconds beyond it for what is held), `blocks` how many prices it makes."""

    quantity: int
    blocks: Fraction
    amount: int


def usage_rate(*, used: int, price: Price) -> Rated:
    """Use in a cycle, priced: the included units free, then per started block."""
    if used < 0:
        raise ValueError("Use is never negative")
    capped = used if price.limit is None else min(used, price.limit)
    billable = max(0, capped - price.included)
    blocks = ceil(billable / price.per) if billable else 0
    return Rated(billable, Fraction(blocks), money_round(Fraction(blocks * price.unit_amount)))


@dataclass(frozen=True)
class Span:
    """One resource held from `start` until `end` (None: still held)."""

    resource_id: str
    start: datetime
    end: datetime | None


def spans_from_events(events: list[tuple[str, str, datetime]]) -> list[Span]:
    """Attach/detach events (resource id, "attach" or "detach", when), in ledger order,
    as the spans each resource was held. The ledger refuses a detach of what is not held
    and an attach of what is, so each detach closes the resource's open span."""
    spans: list[Span] = []
    open_at: dict[str, datetime] = {}
    for resource_id, action, at in events:
        if action == "attach":
            open_at[resource_id] = at
        elif resource_id in open_at:
            spans.append(Span(resource_id, open_at.pop(resource_id), at))
    spans.extend(Span(resource_id, start, None) for resource_id, start in open_at.items())
    return sorted(spans, key=lambda span: (_utc(span.start), span.resource_id))


def _utc(moment: datetime) -> datetime:
    """Python compares and subtracts two datetimes of the same zone by their wall clocks
    (so a Paris night with a DST change would last 24 hours): work in UTC instants."""
    return moment.astimezone(UTC)


def clip(span: Span, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """The part of a span inside [start, end), in UTC, or None."""
    low = max(_utc(span.start), _utc(start))
    high = _utc(end) if span.end is None else min(_utc(span.end), _utc(end))
    return (low, high) if low < high else None


def _seconds(low: datetime, high: datetime) -> Fraction:
    delta = _utc(high) - _utc(low)
    return Fraction(delta.days * 86_400 + delta.seconds) + Fraction(delta.microseconds, 10**6)


def excess_seconds(
    *, spans: list[Span], start: datetime, end: datetime, included: int, limit: int | None
) -> Fraction:
    """Resource-seconds held beyond `included` (and not beyond `limit`) in [start, end):
    at each moment, how many are held past the included number, summed over time."""
    changes: dict[datetime, int] = {}
    for span in spans:
        inside = clip(span, start, end)
        if inside:
            changes[inside[0]] = changes.get(inside[0], 0) + 1
            changes[inside[1]] = changes.get(inside[1], 0) - 1
    total, held, previous = Fraction(0), 0, None
    for moment in sorted(changes):
        if previous is not None:
            counted = held if limit is None else min(held, limit)
            total += max(0, counted - included) * _seconds(previous, moment)
        held += changes[moment]
        previous = moment
    return total


def held_rate(*, spans: list[Span], start: datetime, end: datetime, price: Price) -> Rated:
    """Resources held in the cycle [start, end), priced by the share of the cycle each one
    beyond the included number was held."""
    if price.per != 1:
        raise ValueError("A held resource is priced per unit")
    if not _utc(start) < _utc(end):
        raise ValueError("A cycle ends after it starts")
    held = excess_seconds(
        spans=spans, start=start, end=end, included=price.included, limit=price.limit
    )
    cycles = held / _seconds(start, end)
    return Rated(floor(held), cycles, money_round(cycles * price.unit_amount))
