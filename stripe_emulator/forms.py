"""Decode form-encoded bracket parameters (``items[0][price]=x``) into nested dicts.

Leaves stay strings: the parameter validator converts them using stripe-python's types,
so that ``"12"`` is an int only where Stripe expects an int.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid_request

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")

Raw = dict[str, Any]


def decode(encoded: str) -> Raw:
    """Nest ``a[b][0]=v`` pairs; ``a[]=v`` appends to a list."""
    result: Raw = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        match = _KEY.match(key)
        if not match:
            raise invalid_request(f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        _insert(result, path, value, key)
    return result


def _insert(node: Raw, path: list[str], value: str, key: str) -> None:
    *parents, last = path
    for index, part in enumerate(parents):
        following = path[index + 1]
        child = node.get(part)
        if child is None:
            child = [] if following == "" else {}
            node[part] = child
        if isinstance(child, list):
            if following != "":
                raise invalid_request(f"Invalid array: {key}", param=key)
            if index + 1 == len(parents):
                child.append(value)
                return
            raise invalid_request(f"Invalid array: {key}", param=key)
        if not isinstance(child, dict):
            raise invalid_request(
                f"Invalid parameter: {key} mixes a value and an object", param=key
            )
        node = child
    if last == "":
        raise invalid_request(f"Invalid parameter name: {key}", param=key)
    if isinstance(node.get(last), dict):
        raise invalid_request(f"Invalid parameter: {key} mixes a value and an object", param=key)
    node[last] = value
