"""Price arithmetic and Stripe's wording for lines: amounts, descriptions, prorations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from stripe_emulator.store import Obj, Store

TIMES = "\N{MULTIPLICATION SIGN}"  # Stripe writes line descriptions as "1 <times> Pro"


def item_amount(price: Obj, quantity: int | None) -> int:
    if price["recurring"]["usage_type"] != "licensed":
        return 0  # metered usage is not emulated: metered lines bill nothing
    return price["unit_amount"] * (quantity or 0)


def product_name(store: Store, price: Obj) -> str:
    product = store.get(price["product"]) or {}
    return product.get("name") or price["product"]


def line_description(store: Store, price: Obj, quantity: int | None) -> str:
    recurring = price["recurring"]
    every = (
        recurring["interval"]
        if recurring["interval_count"] == 1
        else f"{recurring['interval_count']} {recurring['interval']}s"
    )
    amount = f"{price['unit_amount'] / 100:.2f} {price['currency'].upper()}"
    return f"{quantity or 0} {TIMES} {product_name(store, price)} (at {amount} / {every})"


@dataclass(frozen=True)
class Proration:
    amount: int
    description: str
    price: Obj
    quantity: int
    period: tuple[int, int]


def prorations(
    store: Store,
    subscription: Obj,
    period: tuple[int, int],
    old: tuple[Obj, int],
    new: tuple[Obj, int] | None,
    at: int,
) -> list[Proration]:
    """Credit the unused time of the old price; charge the rest of the period at the new one.

    Nothing is prorated during a trial (it is free) or outside the current period.
    """
    start, end = period
    if subscription["status"] not in ("active", "past_due") or not start <= at < end:
        return []
    fraction = (end - at) / (end - start)
    day = datetime.fromtimestamp(at, UTC).strftime("%d %b %Y")
    result = []
    old_price, old_quantity = old
    credit = round(item_amount(old_price, old_quantity) * fraction)
    if credit:
        result.append(
            Proration(
                -credit,
                f"Unused time on {old_quantity} {TIMES} {product_name(store, old_price)} "
                f"after {day}",
                old_price,
                old_quantity,
                (at, end),
            )
        )
    if new is not None:
        new_price, new_quantity = new
        charge = round(item_amount(new_price, new_quantity) * fraction)
        if charge:
            result.append(
                Proration(
                    charge,
                    f"Remaining time on {new_quantity} {TIMES} "
                    f"{product_name(store, new_price)} after {day}",
                    new_price,
                    new_quantity,
                    (at, end),
                )
            )
    return result
