"""The emails licensing sends: plan changes, the trial's end, each new license. Tasks call
these; they import neither the services nor the tasks, so imports go one way:
services and licenses → tasks → notifications."""

from datetime import UTC, datetime

from accounts.emails import email_send
from accounts.models import Customer, Membership
from billing_portal.money import money_format

from .models import CustomerPlan, License, Plan, SpendCapCrossing


def customer_billing_contacts(*, customer: Customer) -> list[str]:
    return list(
        customer.memberships.filter(
            role__in=[Membership.Role.OWNER, Membership.Role.BILLING]
        ).values_list("user__email", flat=True)
    )


def plan_email_send(
    *,
    customer_id: str,
    template: str,
    plan_code: str,
    previous_plan_code: str = "",
    previous_status: str = "",
    details: dict | None = None,
) -> None:
    """Tell the account's owners and billing members what happened to their plan. A change
    names the plan it came from, so its email can say what the switch did: nothing charged
    in a trial, the trial ended, the difference charged (upgrade) or credited (downgrade).
    `details` are what billing knows of the money (amounts in minor units, with their
    `currency`, shown formatted) and of a switch waiting for its payment (`pay_url`,
    `expires_at` as a timestamp)."""
    customer = Customer.objects.get(pk=customer_id)
    plan = Plan.objects.get(code=plan_code)
    customer_plan = CustomerPlan.objects.filter(customer=customer).first()
    previous_plan = Plan.objects.filter(code=previous_plan_code).first()
    context = {
        "customer": customer,
        "plan": plan,
        "customer_plan": customer_plan,
        "details": _details_shown(details or {}),
    }
    if previous_plan is not None:
        is_trialing = customer_plan is not None and customer_plan.status == "trialing"
        change = _change_kind(
            previous_plan=previous_plan,
            plan=plan,
            was_trialing=previous_status == CustomerPlan.Status.TRIALING,
            is_trialing=is_trialing,
        )
        context.update(previous_plan=previous_plan, change=change)
    for email in customer_billing_contacts(customer=customer):
        email_send(to=email, template=template, context=context)


def _details_shown(details: dict) -> dict:
    """Amounts formatted for people; `expires_at` as a datetime."""
    shown = dict(details)
    currency = details.get("currency", "")
    for key in ("amount", "charged", "credit_used", "credited"):
        if key in details:
            shown[f"{key}_shown"] = money_format(details[key], currency)
    if details.get("expires_at"):
        shown["expires_at"] = datetime.fromtimestamp(details["expires_at"], UTC)
    return shown


def _change_kind(*, previous_plan: Plan, plan: Plan, was_trialing: bool, is_trialing: bool) -> str:
    """What a switch did to the money: `trial` (nothing charged yet), `trial_ended` (the
    first payment taken now), `upgrade` (the difference charged), `downgrade` (the
    difference credited to the account) or `same_price`."""
    if is_trialing:
        return "trial"
    if was_trialing:
        return "trial_ended"
    old, new = previous_plan.amount or 0, plan.amount or 0
    if new > old:
        return "upgrade"
    if new < old:
        return "downgrade"
    return "same_price"


def trial_ending_email_send(*, customer_id: str) -> None:
    customer = Customer.objects.get(pk=customer_id)
    for email in customer_billing_contacts(customer=customer):
        email_send(to=email, template="trial_ending", context={"customer": customer})


def license_email_send(*, jti: str) -> None:
    issued = License.objects.select_related("customer").get(jti=jti)
    for email in customer_billing_contacts(customer=issued.customer):
        email_send(
            to=email,
            template="license_issued",
            context={"license": issued, "customer": issued.customer},
            attachments=[("license.jwt", issued.token, "application/jwt")],
        )


def spend_cap_email_send(*, crossing_id: int) -> None:
    from billing_portal.money import money_format

    crossing = SpendCapCrossing.objects.select_related("cap__customer", "cap__feature").get(
        pk=crossing_id
    )
    cap, customer = crossing.cap, crossing.cap.customer
    paid = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
    currency = paid.plan.currency if paid else "eur"
    context = {
        "customer": customer,
        "crossing": crossing,
        "scope": cap.feature.name if cap.feature_id else "your current invoice",
        "cap_amount": money_format(cap.amount, currency),
        "spend": money_format(crossing.spend, currency),
        "stops": cap.mode == cap.Mode.STOP,
    }
    for email in customer_billing_contacts(customer=customer):
        email_send(to=email, template="spend_cap_crossed", context=context)
