"""Billing's errors, in one place. Each carries a `user_message` fit to show a customer;
the gateway turns Stripe's errors into these, and services raise their own refusals."""

from typing import Any


class BillingError(Exception):
    """A Stripe request failed; `user_message` may be shown to the customer as it is."""

    default_message = "Billing could not complete this request. Please try again."

    def __init__(
        self, user_message: str | None = None, *, code: str | None = None, param: str | None = None
    ) -> None:
        self.user_message = user_message or self.default_message
        self.code = code
        self.param = param
        super().__init__(self.user_message)


class PaymentDeclined(BillingError):
    default_message = "The card was declined."

    def __init__(
        self, user_message: str | None = None, *, decline_code: str | None = None, **kwargs: Any
    ) -> None:
        self.decline_code = decline_code
        super().__init__(user_message, **kwargs)


class PlanChangeDeclined(PaymentDeclined):
    """A plan change's payment was declined: the plan is as it was."""


class GatewayUnavailable(BillingError):
    """Stripe did not answer, or answered 429/5xx: safe to retry with the same key."""

    default_message = (
        "Our payment provider is not responding right now. Nothing was changed; "
        "please try again in a minute."
    )


class BillingNotEnabled(BillingError):
    default_message = "Billing is not enabled on this portal."


class CannotRemoveLastCard(BillingError):
    default_message = (
        "This is your only card and your paid plan renews with it. Add another card "
        "before removing this one, or cancel the plan first."
    )


class AlreadySubscribed(BillingError):
    default_message = "You already have a plan. Change it from the plans page instead."


class CardNeeded(BillingError):
    default_message = "Add a card first: a plan change is charged at once."


class WebhookSignatureInvalid(BillingError):
    """A webhook whose signature does not verify (forged, tampered, stale) or whose body is
    not an event."""

    default_message = "The webhook's signature does not verify."
