"""The emulator's list of event types is the list of what it emits: every `ctx.emit` in its
code names a type in `EVENT_TYPES`, and every type there is emitted somewhere, so the
portal's every-event-type test cannot miss one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stripe_emulator
from stripe_emulator.context import EVENT_TYPES

from .conftest import InProcessHarness


def _emitted_types() -> set[str]:
    found = set()
    for path in Path(stripe_emulator.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
                and node.args
            ):
                first = node.args[0]
                assert isinstance(first, ast.Constant), f"{path}:{node.lineno}: name the type"
                found.add(first.value)
    return found


def test_event_types_are_exactly_those_emitted() -> None:
    assert _emitted_types() == EVENT_TYPES


def test_an_unlisted_event_type_is_refused(in_process: InProcessHarness) -> None:
    from stripe_emulator.context import Context

    ctx = Context(in_process.emulator)
    with pytest.raises(ValueError, match=r"customer\.discount\.created is not in EVENT_TYPES"):
        ctx.emit("customer.discount.created", {"id": "cus_1", "object": "customer"})
