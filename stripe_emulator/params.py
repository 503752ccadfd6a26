"""Strict request validation against stripe-python's generated parameter TypedDicts.

Each endpoint names its ``stripe.params`` class; the decoded form (strings only) is
walked against the class's annotations, converting leaves to the declared types. Any
mismatch is answered the way Stripe answers it: 400 ``invalid_request_error`` naming the
parameter in bracket form (``items[0][price]``).
"""

from __future__ import annotations

import re
import sys
import types
import typing
from decimal import Decimal
from functools import cache
from typing import Any, ForwardRef, Literal, NotRequired, Required, Union

from stripe._request_options import RequestOptions
from typing_extensions import is_typeddict

from .errors import StripeError, invalid_request

_REQUEST_OPTION_KEYS = frozenset(RequestOptions.__annotations__)
_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?(\d+\.?\d*|\.\d+)$")
UNSET = ""


class _Mismatch(Exception):
    """A value that does not fit one branch of a union; carries the error to report."""

    def __init__(self, error: StripeError) -> None:
        self.error = error


@cache
def fields(cls: type) -> dict[str, tuple[Any, bool]]:
    """Resolved ``{name: (type, required)}`` of a params TypedDict, without request options."""
    module = sys.modules[cls.__module__].__dict__
    required = getattr(cls, "__required_keys__", frozenset())
    resolved: dict[str, tuple[Any, bool]] = {}
    for name, annotation in cls.__annotations__.items():
        if name in _REQUEST_OPTION_KEYS and cls is not RequestOptions:
            continue
        resolved[name] = (_resolve(annotation, module), name in required)
    return resolved


def _resolve(annotation: Any, module: dict[str, Any]) -> Any:
    if isinstance(annotation, str):
        annotation = eval(annotation, module)  # noqa: S307 - generated stripe source
    if isinstance(annotation, ForwardRef):
        annotation = eval(annotation.__forward_arg__, module)  # noqa: S307
    origin = typing.get_origin(annotation)
    if origin in (NotRequired, Required, typing.NotRequired, typing.Required):
        return _resolve(typing.get_args(annotation)[0], module)
    if origin in (Union, types.UnionType):
        options = _close_enums(tuple(_resolve(arg, module) for arg in typing.get_args(annotation)))
        return Union[options]  # noqa: UP007 - built from a tuple at runtime
    if origin in (list, dict):
        args = tuple(_resolve(arg, module) for arg in typing.get_args(annotation))
        return list[args[0]] if origin is list else dict[args]  # type: ignore[valid-type]
    return annotation


def _close_enums(options: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the ``|str`` stripe-python adds to enums for forward compatibility.

    ``Literal['a', 'b']|str`` means "one of a, b" to Stripe's API; ``Literal['']|str``
    (unset or any string) keeps its ``str``.
    """
    enum = any(
        typing.get_origin(option) is Literal and typing.get_args(option) != (UNSET,)
        for option in options
    )
    return tuple(option for option in options if not (enum and option is str))


def validate(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    """Return ``raw`` converted to the types of ``cls``, or raise Stripe's 400."""
    try:
        return _typed_dict(cls, raw, "")
    except _Mismatch as mismatch:
        raise mismatch.error from None


def _name(path: str, key: str) -> str:
    return f"{path}[{key}]" if path else key


def _typed_dict(cls: type, raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _Mismatch(invalid_request("Invalid object", param=path or None))
    declared = fields(cls)
    for key in raw:
        if key not in declared:
            name = _name(path, key)
            raise _Mismatch(invalid_request(f"Received unknown parameter: {name}", param=name))
    for key, (_, required) in declared.items():
        if required and key not in raw:
            name = _name(path, key)
            raise _Mismatch(invalid_request(f"Missing required param: {name}.", param=name))
    return {key: _value(declared[key][0], value, _name(path, key)) for key, value in raw.items()}


def _value(tp: Any, raw: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Union:
        return _union(typing.get_args(tp), raw, path)
    if origin is Literal:
        allowed = [str(v) for v in typing.get_args(tp)]
        if isinstance(raw, str) and raw in allowed:
            return raw
        if allowed == [UNSET]:
            raise _Mismatch(invalid_request(f"Invalid {path}: must be an empty string", param=path))
        listed = (
            ", ".join(allowed[:-1]) + (", or " if len(allowed) > 2 else " or ") + allowed[-1]
            if len(allowed) > 1
            else allowed[0]
        )
        raise _Mismatch(invalid_request(f"Invalid {path}: must be one of {listed}", param=path))
    if origin is list:
        return _list(typing.get_args(tp)[0], raw, path)
    if origin is dict or _is_untyped_object(tp):
        return _mapping(raw, path)
    if tp is str:
        if isinstance(raw, str):
            return raw
        raise _Mismatch(invalid_request(f"Invalid string: {_show(raw)}", param=path))
    if tp is bool:
        if raw in ("true", "false"):
            return raw == "true"
        raise _Mismatch(invalid_request(f"Invalid boolean: {_show(raw)}", param=path))
    if tp is int:
        if isinstance(raw, str) and _INT.match(raw):
            return int(raw)
        raise _Mismatch(invalid_request(f"Invalid integer: {_show(raw)}", param=path))
    if tp is Decimal:
        if isinstance(raw, str) and _FLOAT.match(raw):
            return raw
        raise _Mismatch(invalid_request(f"Invalid decimal: {_show(raw)}", param=path))
    if tp is float:
        if isinstance(raw, str) and _FLOAT.match(raw):
            return float(raw)
        raise _Mismatch(invalid_request(f"Invalid decimal: {_show(raw)}", param=path))
    if is_typeddict(tp):
        return _typed_dict(tp, raw, path)
    return raw


def _union(options: tuple[Any, ...], raw: Any, path: str) -> Any:
    """Try the branch that fits the raw shape first, so the error names the best guess."""
    ordered = sorted(
        options,
        key=lambda option: (not _shape_fits(option, raw), typing.get_args(option) == (UNSET,)),
    )
    errors: list[_Mismatch] = []
    for option in ordered:
        try:
            return _value(option, raw, path)
        except _Mismatch as mismatch:
            errors.append(mismatch)
    raise errors[0]


def _shape_fits(tp: Any, raw: Any) -> bool:
    container = is_typeddict(tp) or typing.get_origin(tp) in (list, dict) or _is_untyped_object(tp)
    return container == isinstance(raw, (dict, list))


def _list(item_type: Any, raw: Any, path: str) -> list[Any]:
    if isinstance(raw, list):
        items = raw
    elif isinstance(raw, dict) and all(key.isdigit() for key in raw):
        items = [raw[key] for key in sorted(raw, key=int)]
    else:
        raise _Mismatch(invalid_request("Invalid array", param=path))
    return [_value(item_type, item, f"{path}[{index}]") for index, item in enumerate(items)]


def _mapping(raw: Any, path: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise _Mismatch(invalid_request("Invalid object", param=path))
    for key, value in raw.items():
        if not isinstance(value, str):
            name = _name(path, key)
            raise _Mismatch(invalid_request(f"Invalid string: {_show(value)}", param=name))
    if path == "metadata" or path.endswith("[metadata]"):
        try:
            metadata_check(raw, path)
        except StripeError as error:
            raise _Mismatch(error) from None
    return dict(raw)


# Stripe's metadata limits.
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def metadata_check(metadata: dict[str, str], path: str = "metadata") -> None:
    """Raise Stripe's 400 for metadata beyond its limits (50 keys, 40-character keys,
    500-character values)."""
    if len(metadata) > METADATA_MAX_KEYS:
        raise invalid_request(
            f"Invalid {path}: metadata can have at most {METADATA_MAX_KEYS} keys "
            f"(received {len(metadata)}).",
            param=path,
        )
    for key, value in metadata.items():
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise invalid_request(
                f"Invalid {path}: metadata keys can be at most {METADATA_MAX_KEY_LENGTH} "
                f"characters long (received '{key}').",
                param=_name(path, key),
            )
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise invalid_request(
                f"Invalid {path}[{key}]: metadata values can be at most "
                f"{METADATA_MAX_VALUE_LENGTH} characters long.",
                param=_name(path, key),
            )


def _is_untyped_object(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return getattr(origin, "__name__", "") == "UntypedStripeObject"


def _show(raw: Any) -> str:
    return raw if isinstance(raw, str) else repr(raw)
