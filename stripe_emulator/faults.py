"""Faults injected on request through ``POST /_emulator/faults`` for reliability tests.

Request faults answer the next ``count`` matching API requests with a 500, a 429 or no
answer at all: ``timeout`` hangs past the client's timeout without touching state;
``timeout_after_commit`` does the request in full (saved, its idempotency record and
webhooks included) and then loses the answer, the ambiguous failure a client must resolve by
retrying with the same ``Idempotency-Key``. Webhook faults
change how the next ``count`` events are delivered: twice, in reverse order, or late.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

REQUEST_KINDS = ("error_500", "error_429", "timeout", "timeout_after_commit")
WEBHOOK_KINDS = ("webhook_duplicate", "webhook_out_of_order", "webhook_late")


class FaultSpecError(ValueError):
    """A fault request the emulator cannot understand."""


@dataclass
class Fault:
    kind: str
    count: int = 1
    method: str | None = None
    path: str | None = None
    seconds: float = 5.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or path.startswith(self.path)
        )


class Faults:
    """Pending faults, consumed one match at a time."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> Fault:
        if not isinstance(spec, dict):
            raise FaultSpecError("a fault is a JSON object")
        kind = spec.get("kind")
        if kind not in REQUEST_KINDS + WEBHOOK_KINDS:
            raise FaultSpecError(f"kind must be one of {', '.join(REQUEST_KINDS + WEBHOOK_KINDS)}")
        unknown = set(spec) - {"kind", "count", "method", "path", "seconds"}
        if unknown:
            raise FaultSpecError(f"unknown fields: {', '.join(sorted(unknown))}")
        try:
            fault = Fault(
                kind=kind,
                count=int(spec.get("count", 1)),
                method=spec.get("method"),
                path=spec.get("path"),
                seconds=float(spec.get("seconds", 5.0)),
            )
        except (TypeError, ValueError) as error:
            raise FaultSpecError(str(error)) from None
        if fault.count < 1:
            raise FaultSpecError("count must be at least 1")
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]

    def take_request_fault(self, method: str, path: str) -> Fault | None:
        return self._take(REQUEST_KINDS, lambda fault: fault.matches(method, path))

    def take_webhook_fault(self) -> Fault | None:
        return self._take(WEBHOOK_KINDS, lambda fault: True)

    def _take(self, kinds: tuple[str, ...], match: Any) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and match(fault):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None
