"""The endpoint table: (method, path pattern) → (handler, stripe-python params class)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .context import Context
from .store import Obj

Handler = Callable[..., Obj]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    params: type
    regex: re.Pattern[str]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self.regex.fullmatch(path)
        return found.groupdict() if found else None

    def call(self, ctx: Context, params: dict[str, Any], path_args: dict[str, str]) -> Obj:
        return self.handler(ctx, params, **path_args)


def route(method: str, pattern: str, handler: Handler, params: type) -> Route:
    """``/v1/customers/{customer}`` matches one path segment per ``{name}``."""
    regex = re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern))
    return Route(method, pattern, handler, params, regex)


def by_specificity(routes: list[Route]) -> list[Route]:
    """Routes with fewer ``{placeholders}`` first, so a literal segment wins a tie."""
    return sorted(routes, key=lambda candidate: candidate.pattern.count("{"))


def find(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for candidate in routes:
        args = candidate.match(method, path)
        if args is not None:
            return candidate, args
    return None
