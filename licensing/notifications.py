"""The emails licensing sends: plan changes, the trial's end, each new license. Tasks call
these; they import neither the services nor the tasks, so imports go one way:
services and licenses → tasks → notifications."""

from accounts.emails import email_send
from accounts.models import Customer, Membership

from .models import CustomerPlan, License, Plan


def customer_billing_contacts(*, customer: Customer) -> list[str]:
    return list(
        customer.memberships.filter(
            role__in=[Membership.Role.OWNER, Membership.Role.BILLING]
        ).values_list("user__email", flat=True)
    )


def plan_email_send(*, customer_id: str, template: str, plan_code: str) -> None:
    """Tell the account's owners and billing members what happened to their plan."""
    customer = Customer.objects.get(pk=customer_id)
    plan = Plan.objects.get(code=plan_code)
    customer_plan = CustomerPlan.objects.filter(customer=customer).first()
    for email in customer_billing_contacts(customer=customer):
        email_send(
            to=email,
            template=template,
            context={"customer": customer, "plan": plan, "customer_plan": customer_plan},
        )


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
