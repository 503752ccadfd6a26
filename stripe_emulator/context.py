"""What a handler sees of one request: the store, the clock, and the events it emits."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import invalid_request, resource_missing
from .ids import new_id
from .render import render
from .store import Obj, Store

if TYPE_CHECKING:
    from .app import Emulator

API_VERSION = "2026-08-26.dahlia"

# Every event type the emulator emits; `emit` refuses any other, so the portal's test that
# posts one event of each type to dj-stripe (tests/billing/test_every_event_type.py) covers a
# new type as soon as it can be emitted.
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "billing.meter.created",
        "charge.failed",
        "charge.succeeded",
        "checkout.session.completed",
        "checkout.session.expired",
        "customer.created",
        "customer.deleted",
        "customer.subscription.created",
        "customer.subscription.deleted",
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
        "customer.subscription.trial_will_end",
        "customer.subscription.updated",
        "customer.tax_id.created",
        "customer.tax_id.deleted",
        "customer.updated",
        "invoice.created",
        "invoice.deleted",
        "invoice.finalized",
        "invoice.marked_uncollectible",
        "invoice.paid",
        "invoice.payment_action_required",
        "invoice.payment_failed",
        "invoice.payment_succeeded",
        "invoice.upcoming",
        "invoice.updated",
        "invoice.voided",
        "invoice_payment.paid",
        "invoiceitem.created",
        "invoiceitem.deleted",
        "payment_intent.canceled",
        "payment_intent.created",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
        "payment_method.attached",
        "payment_method.detached",
        "payment_method.updated",
        "price.created",
        "price.updated",
        "product.created",
        "product.deleted",
        "product.updated",
        "setup_intent.canceled",
        "setup_intent.created",
        "setup_intent.setup_failed",
        "setup_intent.succeeded",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.deleted",
        "test_helpers.test_clock.ready",
    }
)


@dataclass
class Context:
    """One request's view of the emulator; events are released after it is answered."""

    emulator: Emulator
    request_id: str = field(default_factory=lambda: new_id("req"))
    idempotency_key: str | None = None
    events: list[Obj] = field(default_factory=list)
    # On a hosted Checkout page the customer is there to pass 3-D Secure as the card asks.
    customer_present: bool = False

    @property
    def store(self) -> Store:
        return self.emulator.store

    @property
    def base_url(self) -> str:
        return self.emulator.base_url

    def now(self, clock_id: str | None = None) -> int:
        """Wall time, or the frozen time of a test clock the object lives on."""
        if clock_id:
            clock = self.store.get(clock_id)
            if clock is not None and not clock.get("deleted"):
                return int(clock["frozen_time"])
        return int(time.time())

    def fetch(
        self, object_type: str, object_id: Any, *, label: str | None = None, param: str = "id"
    ) -> Obj:
        """A live object of the given type, or Stripe's ``No such …`` 404."""
        if not object_id:
            raise invalid_request(f"Missing required param: {param}.", param=param)
        obj = self.store.get(object_id) if isinstance(object_id, str) else None
        if obj is None or obj.get("object") != object_type or obj.get("deleted"):
            raise resource_missing(label or object_type.replace("_", " "), str(object_id), param)
        return obj

    def emit(self, event_type: str, obj: Obj, previous: Obj | None = None) -> Obj | None:
        """Record an event carrying ``obj`` as it is now (and what changed, for updates)."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"{event_type} is not in EVENT_TYPES: add it there first")
        data: Obj = {"object": render(self.store, obj)}
        if previous is not None:
            changed = {
                key: value for key, value in previous.items() if data["object"].get(key) != value
            }
            if not changed:
                return None
            data["previous_attributes"] = changed
        event: Obj = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": data,
            "livemode": False,
            "pending_webhooks": self.emulator.webhooks.endpoint_count(event_type),
            "request": {"id": self.request_id, "idempotency_key": self.idempotency_key},
            "type": event_type,
        }
        self.store.add(event)
        self.events.append(event)
        return event

    def snapshot(self, obj: Obj) -> Obj:
        """The rendered object before a change, to compute ``previous_attributes``."""
        return render(self.store, obj)
