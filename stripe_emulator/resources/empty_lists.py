"""Lists of resources the emulator does not model, answered empty so that dj-stripe's
sync and other tooling see a Stripe account that simply has none of them."""

from __future__ import annotations

from typing import Any

import stripe.params as P

from stripe_emulator.context import Context
from stripe_emulator.render import list_object
from stripe_emulator.routing import Route, route
from stripe_emulator.store import Obj

_EMPTY: tuple[tuple[str, type], ...] = (
    ("/v1/accounts", P.AccountListParams),
    ("/v1/application_fees", P.ApplicationFeeListParams),
    ("/v1/balance_transactions", P.BalanceTransactionListParams),
    ("/v1/billing_portal/configurations", P.billing_portal.ConfigurationListParams),
    ("/v1/country_specs", P.CountrySpecListParams),
    ("/v1/credit_notes", P.CreditNoteListParams),
    ("/v1/disputes", P.DisputeListParams),
    ("/v1/entitlements/active_entitlements", P.entitlements.ActiveEntitlementListParams),
    ("/v1/entitlements/features", P.entitlements.FeatureListParams),
    ("/v1/file_links", P.FileLinkListParams),
    ("/v1/files", P.FileListParams),
    ("/v1/identity/verification_reports", P.identity.VerificationReportListParams),
    ("/v1/identity/verification_sessions", P.identity.VerificationSessionListParams),
    ("/v1/issuing/authorizations", P.issuing.AuthorizationListParams),
    ("/v1/issuing/cardholders", P.issuing.CardholderListParams),
    ("/v1/issuing/cards", P.issuing.CardListParams),
    ("/v1/issuing/disputes", P.issuing.DisputeListParams),
    ("/v1/issuing/transactions", P.issuing.TransactionListParams),
    ("/v1/payment_links", P.PaymentLinkListParams),
    ("/v1/payouts", P.PayoutListParams),
    ("/v1/plans", P.PlanListParams),
    ("/v1/promotion_codes", P.PromotionCodeListParams),
    ("/v1/radar/early_fraud_warnings", P.radar.EarlyFraudWarningListParams),
    ("/v1/refunds", P.RefundListParams),
    ("/v1/reviews", P.ReviewListParams),
    ("/v1/shipping_rates", P.ShippingRateListParams),
    ("/v1/subscription_schedules", P.SubscriptionScheduleListParams),
    ("/v1/tax_codes", P.TaxCodeListParams),
    ("/v1/tax_rates", P.TaxRateListParams),
    ("/v1/topups", P.TopupListParams),
    ("/v1/transfers", P.TransferListParams),
)


def _empty_list(path: str) -> Any:
    def handler(ctx: Context, params: dict[str, Any]) -> Obj:
        return list_object(path, [])

    return handler


def _customer_empty_list(suffix: str) -> Any:
    def handler(ctx: Context, params: dict[str, Any], customer: str) -> Obj:
        ctx.fetch("customer", customer, param="customer")
        return list_object(f"/v1/customers/{customer}/{suffix}", [])

    return handler


ROUTES: list[Route] = [route("GET", path, _empty_list(path), params) for path, params in _EMPTY] + [
    route(
        "GET",
        "/v1/customers/{customer}/sources",
        _customer_empty_list("sources"),
        P.CustomerListSourcesParams,
    ),
]
