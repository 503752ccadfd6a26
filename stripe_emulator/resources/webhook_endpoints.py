"""Webhook endpoints: where events are delivered; the signing secret is shown on create only."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import API_VERSION, Context
from stripe_emulator.ids import new_id, random_token
from stripe_emulator.render import paginate
from stripe_emulator.routing import route
from stripe_emulator.store import Obj

from .common import assign, deleted


def webhook_endpoint_create(ctx: Context, params: dict[str, Any]) -> Obj:
    endpoint = ctx.store.add(
        {
            "id": new_id("we"),
            "object": "webhook_endpoint",
            "api_version": params.get("api_version") or API_VERSION,
            "application": None,
            "created": ctx.now(),
            "description": params.get("description") or None,
            "enabled_events": list(params["enabled_events"]),
            "livemode": False,
            "metadata": {},
            "status": "enabled",
            "url": params["url"],
            "_secret": f"whsec_{random_token(32)}",
        }
    )
    assign(endpoint, params, ())
    return {**endpoint, "secret": endpoint["_secret"]}


def webhook_endpoint_retrieve(ctx: Context, params: dict[str, Any], endpoint: str) -> Obj:
    return ctx.fetch("webhook_endpoint", endpoint, label="webhook endpoint")


def webhook_endpoint_update(ctx: Context, params: dict[str, Any], endpoint: str) -> Obj:
    found = ctx.fetch("webhook_endpoint", endpoint, label="webhook endpoint")
    assign(found, params, ("description", "url", "enabled_events"))
    if "disabled" in params:
        found["status"] = "disabled" if params["disabled"] else "enabled"
    ctx.store.touch(found)
    return found


def webhook_endpoint_delete(ctx: Context, params: dict[str, Any], endpoint: str) -> Obj:
    found = ctx.fetch("webhook_endpoint", endpoint, label="webhook endpoint")
    tombstone = deleted(found)
    ctx.store.replace(tombstone)
    return tombstone


def webhook_endpoint_list(ctx: Context, params: dict[str, Any]) -> Obj:
    return paginate(ctx.store.select("webhook_endpoint"), params, "/v1/webhook_endpoints")


ROUTES = [
    route("POST", "/v1/webhook_endpoints", webhook_endpoint_create, P.WebhookEndpointCreateParams),
    route("GET", "/v1/webhook_endpoints", webhook_endpoint_list, P.WebhookEndpointListParams),
    route(
        "GET",
        "/v1/webhook_endpoints/{endpoint}",
        webhook_endpoint_retrieve,
        P.WebhookEndpointRetrieveParams,
    ),
    route(
        "POST",
        "/v1/webhook_endpoints/{endpoint}",
        webhook_endpoint_update,
        P.WebhookEndpointModifyParams,
    ),
    route(
        "DELETE",
        "/v1/webhook_endpoints/{endpoint}",
        webhook_endpoint_delete,
        P.WebhookEndpointDeleteParams,
    ),
]
