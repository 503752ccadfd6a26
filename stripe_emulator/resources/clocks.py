"""Test clocks: advancing one runs, in time order, everything due for its customers —
trial notices, upcoming renewal notices, renewals, cancellations at period end, draft
invoices' finalization and payment an hour after ``invoice.created`` was acknowledged, and
the retries of failed renewal payments (``next_payment_attempt``)."""

from __future__ import annotations

import time
from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.errors import invalid_request
from stripe_emulator.ids import new_id
from stripe_emulator.render import paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj, Store
from stripe_emulator.timeutil import DAY, add_interval

from .common import deleted
from .coupons import subscription_discounts_expire
from .invoicing import invoice_finalize
from .previews import subscription_upcoming_notice
from .subscription_lifecycle import (
    ENDED,
    invoice_collect_automatically,
    invoice_retry_due,
    subscription_cycle,
    subscription_due_actions,
    subscription_end,
    subscription_items,
    subscription_pending_update_expire,
    subscription_trial_will_end,
)

CLOCK = "test_helpers.test_clock"
MAX_STEPS = 10_000  # a runaway schedule is an emulator bug, not an endless request


def clock_create(ctx: Context, params: dict[str, Any]) -> Obj:
    now = ctx.now()
    clock = ctx.store.add(
        {
            "id": new_id("clock"),
            "object": CLOCK,
            "created": now,
            "deletes_after": now + 30 * DAY,
            "frozen_time": params["frozen_time"],
            "livemode": False,
            "name": params.get("name"),
            "status": "ready",
            "status_details": {},
        }
    )
    ctx.emit("test_helpers.test_clock.created", clock)
    return clock


def clock_retrieve(ctx: Context, params: dict[str, Any], clock: str) -> Obj:
    return ctx.fetch(CLOCK, clock, label="test_clock")


def clock_list(ctx: Context, params: dict[str, Any]) -> Obj:
    return paginate(ctx.store.select(CLOCK), params, "/v1/test_helpers/test_clocks")


def clock_delete(ctx: Context, params: dict[str, Any], clock: str) -> Obj:
    found = ctx.fetch(CLOCK, clock, label="test_clock")
    for obj in list(ctx.store.all()):
        if obj.get("test_clock") == clock and obj.get("object") in (
            "customer",
            "subscription",
            "invoice",
            "invoiceitem",
        ):
            ctx.store.replace(deleted(obj))
    ctx.emit("test_helpers.test_clock.deleted", found)
    tombstone = deleted(found)
    ctx.store.replace(tombstone)
    return tombstone


def clock_advance(ctx: Context, params: dict[str, Any], clock: str) -> Obj:
    """Start advancing: the clock answers ``advancing`` and the work is done afterwards, by
    :func:`clock_settle`, so clients poll until it is ``ready`` as they must with Stripe."""
    found = ctx.fetch(CLOCK, clock, label="test_clock")
    if found["status"] != "ready":
        raise invalid_request(
            f"The test clock {clock} is {found['status']}; it can only be advanced when its "
            "status is ready.",
            code="test_clock_not_ready",
        )
    target = params["frozen_time"]
    if target <= found["frozen_time"]:
        raise invalid_request(
            "The frozen_time must be after the test clock's current frozen_time.",
            param="frozen_time",
        )
    limit, reason = _advance_limit(ctx, found)
    if target > limit:
        raise invalid_request(
            f"Cannot advance the test clock to {target}: it can move at most {reason} "
            f"ahead of its frozen_time, to {limit}.",
            param="frozen_time",
        )
    found["status"] = "advancing"
    found["status_details"] = {"advancing": {"target_frozen_time": target}}
    ctx.emulator.clock_due[clock] = time.monotonic() + ctx.emulator.clock_advance_delay
    ctx.store.touch(found)
    ctx.emit("test_helpers.test_clock.advancing", found)
    return found


def _advance_limit(ctx: Context, clock: Obj) -> tuple[int, str]:
    """Two intervals of the shortest subscription on the clock, or two years without one."""
    now = clock["frozen_time"]
    limits = [(add_interval(now, "year", 2), "two years (it has no subscriptions)")]
    for subscription in ctx.store.select(
        "subscription", lambda s: s["test_clock"] == clock["id"] and s["status"] not in ENDED
    ):
        for item in subscription_items(ctx.store, subscription):
            recurring = ctx.fetch("price", item["price"])["recurring"]
            interval, count = recurring["interval"], recurring["interval_count"]
            limits.append(
                (
                    add_interval(now, interval, 2 * count),
                    f"two intervals of its shortest subscription ({2 * count} {interval}s)",
                )
            )
    return min(limits)


def clock_settle(ctx: Context, clock: Obj) -> None:
    """Finish an advance that has come due: run, in time order, everything due on the
    clock up to its target, then make it ``ready``."""
    target = clock["status_details"]["advancing"]["target_frozen_time"]
    for _ in range(MAX_STEPS):
        step = _next_due(ctx, clock["id"], target)
        if step is None:
            break
        at, run = step
        clock["frozen_time"] = max(clock["frozen_time"], at)
        run()
    clock["frozen_time"] = target
    clock["status"] = "ready"
    clock["status_details"] = {}
    ctx.store.touch(clock)
    ctx.emit("test_helpers.test_clock.ready", clock)


def clocks_due(store: Store, due: dict[str, float], now: float) -> list[Obj]:
    """Advancing clocks whose advance should be finished by ``now`` (monotonic time; one
    left advancing by a previous process is finished at once)."""
    return store.select(CLOCK, lambda c: c["status"] == "advancing" and due.get(c["id"], 0) <= now)


def _next_due(ctx: Context, clock: str, target: int) -> tuple[int, Any] | None:
    """The earliest action due on this clock at or before ``target``."""
    candidates: list[tuple[int, int, Any]] = []
    for subscription in ctx.store.select("subscription", lambda s: s["test_clock"] == clock):
        for at, action in subscription_due_actions(ctx.store, subscription):
            if at <= target:
                candidates.append(
                    (at, len(candidates), _subscription_action(ctx, subscription, action))
                )
    for invoice in ctx.store.select(
        "invoice", lambda i: i["test_clock"] == clock and i["status"] == "draft"
    ):
        at = invoice["automatically_finalizes_at"]
        if invoice["auto_advance"] and at is not None and at <= target:
            candidates.append((at, len(candidates), _finalize_and_charge(ctx, invoice)))
    for invoice in ctx.store.select(
        "invoice", lambda i: i["test_clock"] == clock and i["status"] == "open"
    ):
        at = invoice_retry_due(ctx.store, invoice)
        if at is not None and at <= target:  # Smart Retries: the next attempt is due
            candidates.append(
                (at, len(candidates), lambda i=invoice: invoice_collect_automatically(ctx, i))
            )
    if not candidates:
        return None
    at, _, run = min(candidates, key=lambda candidate: candidate[:2])
    return at, run


def _subscription_action(ctx: Context, subscription: Obj, action: str) -> Any:
    if action == "cycle":
        return lambda: subscription_cycle(ctx, subscription)
    if action == "trial_will_end":
        return lambda: subscription_trial_will_end(ctx, subscription)
    if action == "upcoming":
        return lambda: subscription_upcoming_notice(ctx, subscription)
    if action == "pending_update_expire":
        return lambda: subscription_pending_update_expire(ctx, subscription)
    if action == "discount_end":
        return lambda: subscription_discounts_expire(
            ctx, subscription, ctx.now(subscription["test_clock"])
        )
    return lambda: subscription_end(
        ctx, subscription, reason="cancellation_requested", at=subscription["cancel_at"]
    )


def _finalize_and_charge(ctx: Context, invoice: Obj) -> Any:
    def run() -> None:
        invoice_finalize(ctx, invoice)
        if invoice["status"] == "open" and invoice["collection_method"] == "charge_automatically":
            invoice_collect_automatically(ctx, invoice)

    return run


ROUTES = [
    route(
        "POST", "/v1/test_helpers/test_clocks", clock_create, P.test_helpers.TestClockCreateParams
    ),
    route("GET", "/v1/test_helpers/test_clocks", clock_list, P.test_helpers.TestClockListParams),
    route(
        "GET",
        "/v1/test_helpers/test_clocks/{clock}",
        clock_retrieve,
        P.test_helpers.TestClockRetrieveParams,
    ),
    route(
        "DELETE",
        "/v1/test_helpers/test_clocks/{clock}",
        clock_delete,
        P.test_helpers.TestClockDeleteParams,
    ),
    route(
        "POST",
        "/v1/test_helpers/test_clocks/{clock}/advance",
        clock_advance,
        P.test_helpers.TestClockAdvanceParams,
    ),
]
