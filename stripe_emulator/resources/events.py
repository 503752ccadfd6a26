"""Events: every state change is recorded as an event; list and retrieve them."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.render import paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj

from .common import created_filter


def event_retrieve(ctx: Context, params: dict[str, Any], event: str) -> Obj:
    return ctx.fetch("event", event)


def event_list(ctx: Context, params: dict[str, Any]) -> Obj:
    wanted = set(params.get("types") or ([params["type"]] if "type" in params else []))

    def matches(event: Obj) -> bool:
        if wanted and not any(_type_matches(event["type"], pattern) for pattern in wanted):
            return False
        return created_filter(event, params.get("created"))

    return paginate(ctx.store.select("event", matches), params, "/v1/events")


def _type_matches(event_type: str, pattern: str) -> bool:
    """Stripe accepts ``invoice.*`` style wildcards in ``type``."""
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern


ROUTES = [
    route("GET", "/v1/events", event_list, P.EventListParams),
    route("GET", "/v1/events/{event}", event_retrieve, P.EventRetrieveParams),
]
