"""Billing meters: since API 2025-03-31 every metered price is backed by one. Meter events
and their aggregation are not emulated (metered lines bill 0)."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.ids import new_id
from stripe_emulator.render import paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj

METER = "billing.meter"


def meter_create(ctx: Context, params: dict[str, Any]) -> Obj:
    now = ctx.now()
    meter: Obj = {
        "id": new_id("mtr"),
        "object": METER,
        "created": now,
        "customer_mapping": params.get(
            "customer_mapping", {"event_payload_key": "stripe_customer_id", "type": "by_id"}
        ),
        "default_aggregation": {"formula": params["default_aggregation"]["formula"]},
        "display_name": params["display_name"],
        "event_name": params["event_name"],
        "event_time_window": params.get("event_time_window"),
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": now,
        "value_settings": params.get("value_settings", {"event_payload_key": "value"}),
    }
    ctx.store.add(meter)
    ctx.emit("billing.meter.created", meter)
    return meter


def meter_retrieve(ctx: Context, params: dict[str, Any], meter: str) -> Obj:
    return ctx.fetch(METER, meter, label="billing meter")


def meter_list(ctx: Context, params: dict[str, Any]) -> Obj:
    meters = ctx.store.select(METER, lambda m: params.get("status", m["status"]) == m["status"])
    return paginate(meters, params, "/v1/billing/meters")


ROUTES = [
    route("POST", "/v1/billing/meters", meter_create, P.billing.MeterCreateParams),
    route("GET", "/v1/billing/meters", meter_list, P.billing.MeterListParams),
    route("GET", "/v1/billing/meters/{meter}", meter_retrieve, P.billing.MeterRetrieveParams),
]
