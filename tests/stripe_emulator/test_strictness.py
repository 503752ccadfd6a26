"""Must-show 2: every endpoint rejects unknown, mistyped, out-of-enum and missing required
parameters with Stripe's 400 ``invalid_request_error`` naming the parameter."""

from __future__ import annotations

import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest

from stripe_emulator import Emulator, emulator_in_process
from stripe_emulator.params import fields
from stripe_emulator.resources import ROUTES, empty_lists
from stripe_emulator.routing import Route

from .conftest import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    return emulator_in_process()


def call(emulator: Emulator, method: str, path: str, encoded: str) -> tuple[int, dict[str, Any]]:
    if method == "POST":
        response = emulator.handle(method, path, AUTH, encoded.encode())
    else:
        response = emulator.handle(method, f"{path}?{encoded}" if encoded else path, AUTH)
    return response.status, response.json()


def concrete(route: Route) -> str:
    return re.sub(r"\{\w+\}", "emulator_missing_id", route.pattern)


def _choices(tp: Any) -> list[Any]:
    return list(typing.get_args(tp)) if typing.get_origin(tp) is typing.Union else [tp]


def _enum_field(route: Route) -> str | None:
    for name, (tp, _) in fields(route.params).items():
        options = _choices(tp)
        literals = [
            o for o in options if typing.get_origin(o) is Literal and typing.get_args(o) != ("",)
        ]
        if literals and str not in options:
            return name
    return None


def _scalar_field(route: Route) -> tuple[str, str] | None:
    """A top-level int or bool parameter, with a value that is neither."""
    for name, (tp, _) in fields(route.params).items():
        options = _choices(tp)
        if str in options:
            continue
        if int in options:
            return name, "twelve"
        if bool in options:
            return name, "maybe"
    return None


def _valid(tp: Any, name: str) -> list[str]:
    """Form pairs giving ``name`` a value of type ``tp`` (required params filled in)."""
    option = _choices(tp)[0]
    if typing.get_origin(option) is Literal:
        return [f"{name}={typing.get_args(option)[0]}"]
    if typing.get_origin(option) is list:
        return _valid(typing.get_args(option)[0], f"{name}[0]")
    if typing.is_typeddict(option) or hasattr(option, "__required_keys__"):
        # A hash with no required key still needs one to be sent at all (add_lines' lines).
        keys = sorted(option.__required_keys__) or sorted(fields(option))[:1]
        return [pair for key in keys for pair in _valid(fields(option)[key][0], f"{name}[{key}]")]
    return [f"{name}={ {int: '1', bool: 'true'}.get(option, 'x') }"]


def _with_required(route: Route, pair: str, skip: str) -> str:
    required = [
        p
        for key in sorted(route.params.__required_keys__ - {skip})
        for p in _valid(fields(route.params)[key][0], key)
    ]
    return "&".join([*required, pair])


def _cases() -> list[Any]:
    cases = []
    for route in ROUTES:
        label = f"{route.method} {route.pattern}"
        unknown = _with_required(route, "emulator_unknown=1", "")
        cases.append(pytest.param(route, unknown, "emulator_unknown", id=f"unknown {label}"))
        name, value = _scalar_field(route) or ("expand", "notalist")
        cases.append(
            pytest.param(
                route, _with_required(route, f"{name}={value}", name), name, id=f"mistyped {label}"
            )
        )
        enum = _enum_field(route)
        if enum:
            encoded = _with_required(route, f"{enum}=emulator_not_a_choice", enum)
            cases.append(pytest.param(route, encoded, enum, id=f"enum {label}"))
        required = sorted(route.params.__required_keys__ - {"expand"})
        if required:
            cases.append(pytest.param(route, "", set(required), id=f"missing {label}"))
    return cases


@pytest.mark.parametrize(("route", "encoded", "param"), _cases())
def test_every_endpoint_is_strict(
    emulator: Emulator, route: Route, encoded: str, param: Any
) -> None:
    status, body = call(emulator, route.method, concrete(route), encoded)
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request_error"
    if isinstance(param, set):
        assert body["error"]["param"] in param
        assert body["error"]["message"].startswith("Missing required param")
    else:
        assert body["error"]["param"] == param


@pytest.mark.parametrize(
    ("method", "path", "encoded", "param", "message"),
    [
        (
            "POST",
            "/v1/subscriptions",
            "customer=cus_1&items[0][prize]=p",
            "items[0][prize]",
            "Received unknown parameter: items[0][prize]",
        ),
        (
            "POST",
            "/v1/subscriptions",
            "customer=cus_1&items[0][quantity]=two",
            "items[0][quantity]",
            "Invalid integer: two",
        ),
        (
            "POST",
            "/v1/subscriptions",
            "proration_behavior=sometimes",
            "proration_behavior",
            "Invalid proration_behavior: must be one of always_invoice, create_prorations, or none",
        ),
        ("POST", "/v1/subscriptions", "trial_end=tomorrow", "trial_end", None),
        (
            "POST",
            "/v1/customers",
            "invoice_settings[default_payment_method][id]=pm_1",
            "invoice_settings[default_payment_method]",
            "Invalid string: {'id': 'pm_1'}",
        ),
        ("POST", "/v1/customers", "tax_exempt=sometimes", "tax_exempt", None),
        ("POST", "/v1/customers/cus_1", "metadata[plan][code]=pro", "metadata[plan]", None),
        (
            "POST",
            "/v1/prices",
            "product=prod_1&unit_amount=100",
            "currency",
            "Missing required param: currency.",
        ),
        (
            "POST",
            "/v1/prices",
            "currency=usd&recurring[interval]=fortnight",
            "recurring[interval]",
            None,
        ),
        (
            "POST",
            "/v1/prices",
            "currency=usd&recurring[interval_count]=1",
            "recurring[interval]",
            "Missing required param: recurring[interval].",
        ),
        ("POST", "/v1/checkout/sessions", "mode=later", "mode", None),
        (
            "POST",
            "/v1/checkout/sessions",
            "mode=setup&line_items[0][quantity]=1.5",
            "line_items[0][quantity]",
            None,
        ),
        ("POST", "/v1/webhook_endpoints", "url=http://127.0.0.1/hook", "enabled_events", None),
        (
            "POST",
            "/v1/webhook_endpoints",
            "url=http://x&enabled_events[0]=invoice.nothing",
            "enabled_events[0]",
            None,
        ),
        ("POST", "/v1/test_helpers/test_clocks", "frozen_time=soon", "frozen_time", None),
        (
            "POST",
            "/v1/invoices/in_1/pay",
            "paid_out_of_band=yes",
            "paid_out_of_band",
            "Invalid boolean: yes",
        ),
        ("GET", "/v1/customers", "limit=ten", "limit", None),
        ("GET", "/v1/customers", "created[after]=1", "created[after]", None),
        ("GET", "/v1/prices", "lookup_keys=pro", "lookup_keys", None),
        ("GET", "/v1/customers/search", "", "query", "Missing required param: query."),
    ],
)
def test_stripe_names_the_parameter(
    emulator: Emulator, method: str, path: str, encoded: str, param: str, message: str | None
) -> None:
    status, body = call(emulator, method, path, encoded)
    assert status == 400
    assert body["error"]["param"] == param
    if message:
        assert body["error"]["message"] == message


def test_valid_parameters_pass(emulator: Emulator) -> None:
    status, body = call(
        emulator, "POST", "/v1/customers", "email=a@example.com&metadata[plan]=pro&tax_exempt=none"
    )
    assert status == 200, body
    assert body["metadata"] == {"plan": "pro"}


def test_unknown_url_is_404(emulator: Emulator) -> None:
    status, body = call(emulator, "GET", "/v1/nothing_here", "")
    assert status == 404
    assert body["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing_here)")


README = Path(__file__).resolve().parents[2] / "stripe_emulator" / "README.md"


def _strings(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        found.add(value)
    elif isinstance(value, (tuple, list, set, frozenset)):
        for item in value:
            _strings(item, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _strings(key, found)
            _strings(item, found)


def _names_read(function: Any, seen: set[int], found: set[str]) -> None:
    """Every string constant in ``function`` and in the emulator functions and constants
    it reaches: a parameter whose name is not among them cannot change anything."""
    if id(function) in seen:
        return
    seen.add(id(function))
    codes = [function.__code__]
    while codes:
        code = codes.pop()
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                codes.append(const)
            else:
                _strings(const, found)
        for name in code.co_names:
            target = function.__globals__.get(name)
            if inspect.isfunction(target) and target.__module__.startswith("stripe_emulator"):
                _names_read(target, seen, found)
            elif isinstance(target, (tuple, frozenset, set, dict)):
                _strings(target, found)
    for cell in function.__closure__ or ():
        _strings(cell.cell_contents, found)


def _payment_method_types(route: Route) -> set[str]:
    declared = fields(route.params)
    if "type" not in declared:
        return set()
    return {
        value
        for option in _choices(declared["type"][0])
        if typing.get_origin(option) is Literal
        for value in typing.get_args(option)
    }


def _readme_table() -> dict[str, set[str]]:
    section = README.read_text().split("## Accepted but not emulated", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        found = re.match(r"^\| `((?:GET|POST|DELETE) \S+)` \| (.*) \|$", line)
        if found:
            table[found.group(1)] = set(re.findall(r"`(\w+)`", found.group(2)))
    return table


def test_readme_lists_what_is_accepted_but_not_emulated() -> None:
    table = _readme_table()
    missing, stale = [], []
    for route in ROUTES:
        if inspect.getmodule(route.handler) is empty_lists:
            continue
        label = f"{route.method} {route.pattern}"
        declared = set(fields(route.params)) - {"expand"}
        read: set[str] = set()
        _names_read(route.handler, set(), read)
        unread = declared - read - _payment_method_types(route)
        listed = table.pop(label, set())
        missing += [f"{label}: {name}" for name in sorted(unread - listed)]
        stale += [f"{label}: {name}" for name in sorted(listed - declared)]
    stale += [f"{label} (no such endpoint)" for label in table]
    assert missing == [], "not in the README's table:\n" + "\n".join(missing)
    assert stale == [], "\n".join(stale)
