"""Must-show 3: every object the emulator returns has Stripe's shape.

No key may appear that Stripe's published example (``../shared/stripe/fixtures3.json``)
lacks, except the few listed in ``ALLOWED_EXTRA`` with the reason; every key of the example
the emulator leaves out must be named, with its reason, in ``stripe_emulator/README.md``.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import pytest
from stripe import StripeObject
from stripe._object_classes import OBJECT_CLASSES, get_object_class

from stripe_emulator.render import render, render_with_expand

from .conftest import InProcessHarness, advance_clock

REPO = Path(__file__).resolve().parents[2]
# ``../shared`` of the main checkout; a worktree one level deeper finds it a level up.
FIXTURES = next(
    (
        base / "shared" / "stripe" / "fixtures3.json"
        for base in REPO.parents
        if (base / "shared" / "stripe" / "fixtures3.json").exists()
    ),
    REPO.parent / "shared" / "stripe" / "fixtures3.json",
)
README = REPO / "stripe_emulator" / "README.md"

# Keys Stripe returns at the pinned version that the example happens not to show.
ALLOWED_EXTRA = {
    "webhook_endpoint.secret": "returned by the create call only, as Stripe does",
    "event.data.previous_attributes": "sent on *.updated events; the example is a *.created event",
    "line_item.pricing.price_details": "dahlia's pricing block; the example shows only its type",
    "invoiceitem.pricing.price_details": "dahlia's pricing block; the example shows only its type",
    "invoice_payment.payment.payment_intent": "the example shows only the payment's type",
    "payment_intent.last_payment_error.code": "the example shows only the error's type",
    "payment_intent.last_payment_error.decline_code": "the example shows only the error's type",
    "payment_intent.last_payment_error.message": "the example shows only the error's type",
    "payment_intent.last_payment_error.charge": "the example shows only the error's type",
    "test_helpers.test_clock.status_details.advancing": "the target of an advance in progress; "
    "the example is a ready clock",
}


@pytest.fixture(scope="module")
def examples() -> dict[str, Any]:
    if not FIXTURES.exists():
        pytest.skip(f"{FIXTURES} is absent")
    return json.loads(FIXTURES.read_text())["resources"]


@pytest.fixture(scope="module")
def produced() -> dict[str, list[dict[str, Any]]]:
    """Drive every resource once, then collect every object the emulator would return."""
    harness = InProcessHarness()
    client = harness.client
    harness.subscribe_webhooks()
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": 1_800_000_000})
    customer = client.v1.customers.create(
        {
            "email": "shape@example.com",
            "address": {"country": "DE", "city": "Berlin"},
            "test_clock": clock.id,
        }
    )
    client.v1.customers.tax_ids.create(customer.id, {"type": "eu_vat", "value": "DE123456789"})
    gone = client.v1.customers.tax_ids.create(
        customer.id, {"type": "eu_vat", "value": "DE987654321"}
    )
    client.v1.customers.tax_ids.delete(customer.id, gone.id)
    price = client.v1.prices.create(
        {
            "product_data": {"name": "Pro"},
            "currency": "usd",
            "unit_amount": 1500,
            "recurring": {"interval": "month"},
        }
    )
    session = client.v1.checkout.sessions.create(
        {"mode": "setup", "customer": customer.id, "success_url": "http://x/ok"}
    )
    harness.submit_checkout(session.url, "pm_card_visa")
    method = client.v1.setup_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).setup_intent
    ).payment_method
    client.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": method}}
    )
    client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "http://x/ok",
        }
    )
    subscription = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}]}
    )
    client.v1.invoice_items.create(
        {"customer": customer.id, "amount": 300, "currency": "usd", "description": "Usage"}
    )
    removed = client.v1.invoice_items.create(
        {"customer": customer.id, "amount": 100, "currency": "usd"}
    )
    client.v1.invoice_items.delete(removed.id)
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": customer.id}
    )
    client.v1.subscriptions.update(subscription.id, {"default_payment_method": failing.id})
    end = client.v1.subscriptions.retrieve(subscription.id)["items"].data[0].current_period_end
    advance_clock(client.v1, clock.id, end + 7200)
    add_on = client.v1.prices.create(
        {
            "product": price.product,
            "currency": "usd",
            "unit_amount": 500,
            "recurring": {"interval": "month"},
        }
    )
    client.v1.subscription_items.delete(
        client.v1.subscription_items.create(
            {"subscription": subscription.id, "price": add_on.id, "quantity": 2}
        ).id
    )
    meter = client.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "sum"},
        }
    )
    client.v1.prices.create(
        {
            "product": price.product,
            "currency": "usd",
            "unit_amount": 2,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    product = client.v1.products.create({"name": "Temporary"})
    client.v1.products.delete(product.id)
    doomed_clock = client.v1.test_helpers.test_clocks.create({"frozen_time": 1_800_000_000})
    client.v1.test_helpers.test_clocks.delete(doomed_clock.id)
    doomed = client.v1.webhook_endpoints.create(
        {"url": "http://127.0.0.1/x", "enabled_events": ["*"]}
    )
    client.v1.webhook_endpoints.delete(doomed.id)
    client.v1.customers.delete(client.v1.customers.create({}).id)
    client.v1.coupons.create({"id": "SHAPE25", "percent_off": 25.5, "duration": "forever"})
    client.v1.subscriptions.update(subscription.id, {"discounts": [{"coupon": "SHAPE25"}]})
    client.v1.coupons.delete(client.v1.coupons.create({"amount_off": 5, "currency": "usd"}).id)
    draft = client.v1.invoices.create({"customer": customer.id})
    client.v1.invoices.delete(draft.id)

    store = harness.emulator.store
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for obj in store.all():
        view = render(store, obj)
        kind = f"deleted_{view['object']}" if view.get("deleted") else view["object"]
        found[kind].append(view)
        if obj["object"] == "invoice" and not obj.get("deleted"):
            found["line_item"].extend(obj["lines"]["data"])
            expanded = render_with_expand(store, obj, ["payments"])
            found["invoice_payment"].extend(expanded["payments"]["data"])
        if obj["object"] == "checkout.session":
            found["item"].extend(
                render_with_expand(store, obj, ["line_items"])["line_items"]["data"]
            )
    created = client.v1.webhook_endpoints.create({"url": "http://x", "enabled_events": ["*"]})
    found["webhook_endpoint"].append(created.to_dict())
    preview = client.v1.invoices.create_preview(
        {
            "subscription": subscription.id,
            "subscription_details": {"items": [{"price": price.id, "quantity": 3}]},
        }
    )
    found["invoice"].append(preview.to_dict())
    return found


def _extra(
    ours: Any, example: Any, examples: dict[str, Any], path: str, nested: bool = False
) -> list[str]:
    if not isinstance(ours, dict) or not isinstance(example, dict):
        return []
    kind = ours.get("object") if isinstance(ours.get("object"), str) else None
    if kind == "list":
        ex_data = example.get("data") or []
        return [
            key
            for item in ours.get("data", [])
            for key in _extra(
                item, ex_data[0] if ex_data else {}, examples, f"{path}.data", nested=True
            )
        ]
    if kind in examples and nested:
        example, path = examples[kind], kind  # a nested object is checked against its own example
    found = []
    for key, value in ours.items():
        if key not in example:
            found.append(f"{path}.{key}")
        elif example[key] is not None:
            found += _extra(value, example[key], examples, f"{path}.{key}", nested=True)
    return found


def test_no_key_stripe_lacks(
    examples: dict[str, Any], produced: dict[str, list[dict[str, Any]]]
) -> None:
    problems = set()
    for kind, objects in produced.items():
        assert kind in examples, f"no published example for {kind}"
        for obj in objects:
            problems.update(_extra(obj, examples[kind], examples, kind))
    unexpected = sorted(problems - set(ALLOWED_EXTRA))
    assert unexpected == [], "\n".join(unexpected)


def test_every_resource_is_covered(produced: dict[str, list[dict[str, Any]]]) -> None:
    expected = {
        "account",
        "customer",
        "tax_id",
        "payment_method",
        "setup_intent",
        "checkout.session",
        "item",
        "product",
        "price",
        "subscription",
        "subscription_item",
        "invoice",
        "line_item",
        "invoiceitem",
        "invoice_payment",
        "payment_intent",
        "charge",
        "event",
        "webhook_endpoint",
        "test_helpers.test_clock",
        "billing.meter",
        "deleted_customer",
        "deleted_product",
        "deleted_invoiceitem",
        "deleted_tax_id",
        "deleted_webhook_endpoint",
        "deleted_test_helpers.test_clock",
        "deleted_invoice",
        "coupon",
        "discount",
        "deleted_coupon",
    }
    assert expected <= set(produced)


def _paths(value: Any, prefix: str) -> tuple[set[str], set[str]]:
    """The dotted key paths in ``value`` and those among them holding an object with keys
    (list items count as the list's path); objects of their own type are not entered, they
    are checked against their own example."""
    keys: set[str] = set()
    containers: set[str] = set()
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict) or not item:
            continue
        containers.add(prefix)
        for key, child in item.items():
            path = f"{prefix}.{key}"
            keys.add(path)
            own_kind = isinstance(child, dict) and isinstance(child.get("object"), str)
            if not own_kind:
                child_keys, child_containers = _paths(child, path)
                keys |= child_keys
                containers |= child_containers
    return keys, containers


def test_left_out_keys_are_documented(
    examples: dict[str, Any], produced: dict[str, list[dict[str, Any]]]
) -> None:
    """Every key of the example, nested ones too, is returned or named in the README (a
    nested key is judged only where the emulator returns its parent as an object)."""
    readme = README.read_text()
    undocumented = []
    for kind, objects in produced.items():
        ours: set[str] = set()
        ours_containers: set[str] = set()
        for obj in objects:
            keys, containers = _paths(obj, kind)
            ours |= keys
            ours_containers |= containers
        expected, _ = _paths(examples[kind], kind)
        missing = {
            path for path in expected - ours if path.rsplit(".", 1)[0] in ours_containers | {kind}
        }
        undocumented += [path for path in sorted(missing) if f"`{path}`" not in readme]
    assert undocumented == [], "\n".join(undocumented)


def _enum_problems(value: Any, cls: type, path: str) -> list[str]:
    """Strings outside the ``Literal`` choices stripe-python declares for the pinned API
    version, walking nested objects (``checkout.session.ui_mode`` is ``hosted_page`` at
    dahlia, not the ``hosted`` of older versions)."""
    if not isinstance(value, dict):
        return []
    module = sys.modules[cls.__module__].__dict__
    namespace = {**module, **{name: getattr(cls, name) for name in dir(cls)}}
    problems = []
    for klass in reversed(cls.__mro__):
        for key, annotation in getattr(klass, "__annotations__", {}).items():
            if key not in value or key.startswith("_"):
                continue
            problems += _check_value(
                value[key], _annotation(annotation, namespace), f"{path}.{key}"
            )
    return problems


def _annotation(annotation: Any, namespace: dict[str, Any]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, namespace)  # noqa: S307 - stripe-python's own annotations
    except NameError:  # a type from another module, imported only for type checking
        return Any


def _check_value(value: Any, tp: Any, path: str) -> list[str]:
    options = (
        typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    )
    literals = [v for o in options if typing.get_origin(o) is Literal for v in typing.get_args(o)]
    if literals and isinstance(value, str) and value not in literals:
        return [f"{path}={value!r} (allowed: {', '.join(map(str, literals))})"]
    for option in options:
        if typing.get_origin(option) is list and isinstance(value, list):
            [item_type] = typing.get_args(option)
            return [p for item in value for p in _check_value(item, item_type, f"{path}[]")]
        if (
            isinstance(option, type)
            and issubclass(option, StripeObject)
            and isinstance(value, dict)
        ):
            if isinstance(value.get("object"), str) and value["object"] in OBJECT_CLASSES:
                return []  # an object of its own type is checked on its own
            return _enum_problems(value, option, path)
    return []


def test_enum_values_exist_at_the_pinned_version(
    produced: dict[str, list[dict[str, Any]]],
) -> None:
    problems = set()
    for kind, objects in produced.items():
        if kind.startswith("deleted_") or kind not in OBJECT_CLASSES:
            continue
        cls = get_object_class("V1", kind)
        for obj in objects:
            problems.update(_enum_problems(obj, cls, kind))
    assert sorted(problems) == []


@pytest.mark.parametrize("invoiced_by", ["invoice", "invoice item", "subscription"])
def test_customer_currency_is_set_once_invoiced(invoiced_by: str) -> None:
    client = InProcessHarness().client
    customer = client.v1.customers.create({"email": "currency@example.com"})
    assert customer.currency is None
    if invoiced_by == "invoice":
        client.v1.invoices.create({"customer": customer.id, "currency": "eur"})
    elif invoiced_by == "invoice item":
        client.v1.invoice_items.create({"customer": customer.id, "amount": 100, "currency": "eur"})
    else:
        price = client.v1.prices.create(
            {
                "product_data": {"name": "Euro plan"},
                "currency": "eur",
                "unit_amount": 0,
                "recurring": {"interval": "month"},
            }
        )
        client.v1.subscriptions.create({"customer": customer.id, "items": [{"price": price.id}]})
    assert client.v1.customers.retrieve(customer.id).currency == "eur"
