"""Our references to Stripe checked against the Stripe account the portal points at now.
After an emulator reset, or a change of Stripe account, they name customers and
subscriptions that do not exist there, and every billing action would fail on them:
`stripe_setup` drops those links, so the next billing action starts afresh."""

from django.db import transaction

from accounts.models import Customer
from billing import gateway
from billing.ledger import billing_entries_record
from billing.models import BillingInfo, CustomerBilling
from licensing.models import CustomerPlan


def stripe_links_repair() -> list[str]:
    """Forget Stripe customers and subscriptions that Stripe does not have; a line per repair.
    Stripe is asked first (two listings, a hundred objects a request), outside any
    transaction; each repair is then one short transaction of its own."""
    customers = gateway.customer_ids_all()
    subscriptions = gateway.subscription_ids_all()
    report = []
    for pk, stripe_id in BillingInfo.objects.values_list("pk", "stripe_id"):
        if stripe_id not in customers:
            _billing_info_forget(pk=pk, stripe_id=stripe_id)
            report.append(f"Stripe customer {stripe_id} not found: link removed")
    live = CustomerPlan.objects.filter(
        status__in=[
            CustomerPlan.Status.TRIALING,
            CustomerPlan.Status.ACTIVE,
            CustomerPlan.Status.PAST_DUE,
        ]
    ).exclude(subscription_id="")
    for plan in live.only("pk", "customer_id", "subscription_id"):
        if plan.subscription_id not in subscriptions:
            _customer_plan_end(plan=plan)
            report.append(f"Subscription {plan.subscription_id} not found: plan ended")
    return report


@transaction.atomic
def _billing_info_forget(*, pk: int, stripe_id: str) -> None:
    links = CustomerBilling.objects.filter(billing_info_id=pk)
    for customer_id in links.values_list("customer_id", flat=True):
        billing_entries_record(
            customer_ids=[customer_id],
            kind="stripe_customer_gone",
            source="system",
            stripe_customer=stripe_id,
        )
    links.delete()
    BillingInfo.objects.filter(pk=pk).delete()  # its cards go with it


@transaction.atomic
def _customer_plan_end(*, plan: CustomerPlan) -> None:
    # The customer's row first, as every writer of their plan locks it: the plan's change
    # writes that row too (its standing version), so the locks come in one order.
    Customer.objects.select_for_update().filter(pk=plan.customer_id).first()
    CustomerPlan.objects.filter(pk=plan.pk).update(
        status=CustomerPlan.Status.CANCELED, cancel_at_period_end=False
    )
    billing_entries_record(
        customer_ids=[plan.customer_id],
        kind="subscription_gone",
        source="system",
        subscription=plan.subscription_id,
    )
