"""Helpers shared by resource handlers: metadata semantics, field updates, filters."""

from __future__ import annotations

from typing import Any

from stripe_emulator.params import metadata_check
from stripe_emulator.store import Obj

UNSET = ""


def metadata_apply(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe's rules: ``metadata=""`` clears all keys, ``metadata[k]=""`` clears one."""
    if update == UNSET:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == UNSET:
            merged.pop(key, None)
        else:
            merged[key] = value
    metadata_check(merged)  # the limits hold for what the object ends up with
    return merged


def assign(obj: Obj, params: dict[str, Any], keys: tuple[str, ...]) -> None:
    """Copy the given params onto ``obj``; an empty string unsets to ``None``."""
    for key in keys:
        if key in params:
            obj[key] = None if params[key] == UNSET else params[key]
    if "metadata" in params:
        obj["metadata"] = metadata_apply(obj.get("metadata") or {}, params["metadata"])


def created_filter(obj: Obj, created: Any) -> bool:
    """``created`` as an exact timestamp or ``{gt, gte, lt, lte}``."""
    if created is None:
        return True
    value = obj["created"]
    if isinstance(created, int):
        return value == created
    return (
        value > created.get("gt", value - 1)
        and value >= created.get("gte", value)
        and value < created.get("lt", value + 1)
        and value <= created.get("lte", value)
    )


def deleted(obj: Obj) -> Obj:
    return {"id": obj["id"], "object": obj["object"], "deleted": True}


def address(value: Any) -> Obj | None:
    """An address hash with every key Stripe returns; ``""`` or absent unsets it."""
    if value is None or value == UNSET:
        return None
    keys = ("city", "country", "line1", "line2", "postal_code", "state")
    return {key: value.get(key) for key in keys}
