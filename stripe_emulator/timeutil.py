"""Calendar arithmetic for billing periods (Stripe keeps the anchor's day of month)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

DAY = 86400


def add_interval(
    timestamp: int, interval: str, count: int, *, anchor_day: int | None = None
) -> int:
    """``timestamp`` plus ``count`` intervals.

    Months keep the billing anchor's day where the month has it and clamp to its last day
    otherwise (an anchor on the 31st bills on Feb 28, then on Mar 31), as Stripe does.
    """
    moment = datetime.fromtimestamp(timestamp, UTC)
    if interval == "day":
        return int((moment + timedelta(days=count)).timestamp())
    if interval == "week":
        return int((moment + timedelta(weeks=count)).timestamp())
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(anchor_day or moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())
