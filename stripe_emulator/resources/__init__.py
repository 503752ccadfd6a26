"""Every endpoint the emulator answers, one table built from each resource module.

To add a resource: write a module with handlers ``(ctx, params, **path_args) -> object``
and a ``ROUTES`` list naming each endpoint's stripe-python params class, then add it here.
Order does not matter: literal paths (``/v1/customers/search``) win over ``{id}`` patterns.
"""

from __future__ import annotations

from stripe_emulator.routing import Route, by_specificity

from . import (
    account,
    catalog,
    checkout,
    clocks,
    coupons,
    customer_balance,
    customers,
    empty_lists,
    events,
    invoice_items,
    invoice_lines,
    invoices,
    meters,
    payment_methods,
    payments,
    previews,
    setup_intents,
    subscription_items,
    subscriptions,
    webhook_endpoints,
)

ROUTES: list[Route] = by_specificity(
    [
        *account.ROUTES,
        *customers.ROUTES,
        *customer_balance.ROUTES,
        *payment_methods.ROUTES,
        *setup_intents.ROUTES,
        *checkout.ROUTES,
        *catalog.ROUTES,
        *meters.ROUTES,
        *subscriptions.ROUTES,
        *subscription_items.ROUTES,
        *invoices.ROUTES,
        *invoice_lines.ROUTES,
        *previews.ROUTES,
        *invoice_items.ROUTES,
        *payments.ROUTES,
        *events.ROUTES,
        *webhook_endpoints.ROUTES,
        *clocks.ROUTES,
        *coupons.ROUTES,
        *empty_lists.ROUTES,
    ]
)
