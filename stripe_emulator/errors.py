"""Stripe's error envelope, raised by handlers and rendered by the dispatcher."""

from __future__ import annotations

from typing import Any

from .cards import decline_error_code


class StripeError(Exception):
    """An API error answered as ``{"error": {...}}`` with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            body["code"] = self.code
            body["doc_url"] = f"https://docs.stripe.com/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            body["param"] = self.param
        if self.decline_code:
            body["decline_code"] = self.decline_code
        body.update(self.extra)
        return {"error": body}


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


def resource_missing(label: str, object_id: str, param: str = "id") -> StripeError:
    """Stripe's 404 for an unknown id, e.g. ``No such customer: 'cus_x'``."""
    return StripeError(404, f"No such {label}: '{object_id}'", code="resource_missing", param=param)


def card_declined(decline_code: str, message: str) -> StripeError:
    """The 402 a declined card gets; the decline code says why (``insufficient_funds``), the
    error code is ``card_declined`` or, for a few, the decline code itself (``expired_card``)."""
    return StripeError(
        402,
        message,
        type="card_error",
        code=decline_error_code(decline_code),
        decline_code=decline_code,
    )


def only_one_of(params: dict[str, Any], *names: str, prefix: str = "") -> None:
    """Stripe's 400 when parameters that exclude each other are given together."""
    given = [name for name in names if name in params]
    if len(given) > 1:
        listed = ", ".join(f"{prefix}{name}" for name in names)
        raise invalid_request(
            f"You may only specify one of these parameters: {listed}.", param=f"{prefix}{given[1]}"
        )


def negative(value: Any, param: str) -> None:
    """Stripe's 400 for a negative amount or quantity."""
    if isinstance(value, int) and value < 0:
        raise invalid_request(f"Invalid {param}: must be greater than or equal to 0.", param=param)
