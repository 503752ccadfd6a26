"""Turn stored objects into API responses: private fields dropped, derived lists filled,
``expand[]`` applied, list pagination."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import invalid_request
from .store import Obj, Store

MAX_LIMIT = 100


def list_object(url: str, data: list[Obj], has_more: bool = False) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _public(value: Any) -> Any:
    """Deep copy without the ``_private`` bookkeeping keys handlers keep on objects."""
    if isinstance(value, dict):
        return {key: _public(item) for key, item in value.items() if not key.startswith("_")}
    if isinstance(value, list):
        return [_public(item) for item in value]
    return value


def _price_as_plan(price: Obj) -> Obj:
    """The legacy ``plan`` view Stripe still embeds in subscription items."""
    recurring = price.get("recurring") or {}
    return {
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "id": price["id"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": price["metadata"],
        "meter": recurring.get("meter"),
        "nickname": price["nickname"],
        "object": "plan",
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type"),
    }


def _subscription_item(store: Store, item: Obj) -> Obj:
    view = _public(item)
    price = store.get(item["price"])
    if price is not None:
        view["price"] = _public(price)
        view["plan"] = _price_as_plan(price)
    return view


def _subscription(store: Store, subscription: Obj) -> Obj:
    view = _public(subscription)
    items = store.select(
        "subscription_item", lambda item: item["subscription"] == subscription["id"]
    )
    view["items"] = list_object(
        f"/v1/subscription_items?subscription={subscription['id']}",
        [_subscription_item(store, item) for item in reversed(items)],
    )
    return view


_VIEWS: dict[str, Callable[[Store, Obj], Obj]] = {
    "subscription": _subscription,
    "subscription_item": _subscription_item,
}

# Fields Stripe only returns when expanded (``expand[]=line_items``), computed on demand and
# keyed by the owning object's type and the field's dotted path inside it.
Includable = Callable[[Store, Obj], Any]
_INCLUDABLE: dict[tuple[str, str], Includable] = {}


def includable(object_type: str, field: str) -> Callable[[Includable], Includable]:
    def register(build: Includable) -> Includable:
        _INCLUDABLE[(object_type, field)] = build
        return build

    return register


def render(store: Store, obj: Obj) -> Obj:
    if obj.get("deleted"):
        return _public(obj)
    view = _VIEWS.get(obj.get("object", ""))
    if view is not None:
        return view(store, obj)
    if obj.get("object") == "list":
        return {**obj, "data": [render(store, item) for item in obj["data"]]}
    return _public(obj)


def render_with_expand(store: Store, obj: Obj, paths: list[str]) -> Obj:
    result = render(store, obj)
    if result.get("deleted") is True:
        # A deleted object answers its tombstone (id, object, deleted) with a 200, whatever
        # the request expands: dj-stripe retrieves every customer expanding default_source.
        return result
    for path in paths:
        _expand(store, result, path.split("."), path, owner=result, prefix="")
    return result


def _expand(
    store: Store, node: Any, parts: list[str], full: str, *, owner: Obj, prefix: str
) -> None:
    if not parts or not isinstance(node, dict):
        return
    if isinstance(node.get("object"), str) and node.get("id"):
        owner, prefix = node, ""
    head, rest = parts[0], parts[1:]
    if node.get("object") == "list" and head == "data":
        for item in node["data"]:
            _expand(store, item, rest, full, owner=item, prefix="")
        return
    builder = _INCLUDABLE.get((owner.get("object", ""), prefix + head))
    if builder is not None:
        source = store.get(owner.get("id", "")) or owner
        built = builder(store, source)
        node[head] = render(store, built) if isinstance(built, dict) else built
    elif head not in node:
        raise invalid_request(f"This property cannot be expanded ({full}).", param="expand")
    value = node[head]
    if isinstance(value, str):
        target = store.get(value)
        if target is None:
            raise invalid_request(f"This property cannot be expanded ({full}).", param="expand")
        node[head] = value = render(store, target)
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        if isinstance(item, str) and rest == [] and store.get(item) is not None:
            items[index] = render(store, store.get(item))  # type: ignore[arg-type]
        else:
            _expand(store, item, rest, full, owner=owner, prefix=f"{prefix}{head}.")


def limit_check(limit: int) -> None:
    """Every list takes a ``limit`` from 1 to 100."""
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid_request(
            f"Invalid limit: must be at most {MAX_LIMIT}"
            if limit > MAX_LIMIT
            else "Invalid limit: must be at least 1",
            param="limit",
        )


def paginate(items: list[Obj], params: dict[str, Any], url: str) -> Obj:
    """Slice newest-first ``items`` by ``limit`` / ``starting_after`` / ``ending_before``."""
    limit = int(params.get("limit", 10))
    limit_check(limit)
    ids = [item["id"] for item in items]
    if params.get("starting_after"):
        cursor = params["starting_after"]
        start = _cursor_index(ids, cursor, "starting_after") + 1
        page = items[start : start + limit]
        has_more = start + limit < len(items)
    elif params.get("ending_before"):
        end = _cursor_index(ids, params["ending_before"], "ending_before")
        page = items[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        page = items[:limit]
        has_more = len(items) > limit
    return list_object(url, page, has_more)


def _cursor_index(ids: list[str], cursor: str, param: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise invalid_request(
            f"No such object: '{cursor}'", param=param, code="resource_missing"
        ) from None
