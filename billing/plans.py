"""Plans: the customer's plan as a projection of their Stripe subscription, and the
upgrade, change and cancel flows that write to Stripe."""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Customer
from audit.models import Entry
from licensing.models import CustomerPlan, Plan
from licensing.services import Transition, customer_plan_apply

from . import discounts, errors, gateway, invoicing, mirror
from .cards import billing_info_ensure, payment_method_sync
from .errors import AlreadySubscribed, CardNeeded
from .ledger import billing_entries_record
from .models import BillingInfo, CustomerBilling, PaymentMethod, UpgradeCheckout
from .sync import object_sync

logger = logging.getLogger(__name__)

# Stripe's subscription statuses, as the portal's plan status. Not yet paid for: no plan.
STATUS_FROM_STRIPE = {
    "trialing": CustomerPlan.Status.TRIALING,
    "active": CustomerPlan.Status.ACTIVE,
    "past_due": CustomerPlan.Status.PAST_DUE,
    "unpaid": CustomerPlan.Status.PAST_DUE,
    "paused": CustomerPlan.Status.PAST_DUE,
    "canceled": CustomerPlan.Status.CANCELED,
    "incomplete_expired": CustomerPlan.Status.CANCELED,
}
# Subscriptions that will still be charged: their own card is cleared (`subscription_sync`).
# An ended one cannot be changed, and an incomplete one is settled by its first invoice.
CARD_FOLLOWS_ORDER = {"trialing", "active", "past_due", "unpaid", "paused"}
# Stripe wants a Checkout trial to end at least 48 hours ahead; shorter remainders are dropped.
CHECKOUT_MIN_TRIAL = timedelta(hours=48)


def _customer_of(subscription: dict) -> Customer | None:
    """Our customer account for a subscription: by the id in its metadata, else the one
    account billing through its Stripe customer."""
    customer_id = (subscription.get("metadata") or {}).get("customer_id")
    if customer_id:
        return Customer.objects.filter(pk=customer_id).first()
    links = CustomerBilling.objects.filter(billing_info__stripe_id=subscription["customer"])
    return links.first().customer if links.count() == 1 else None


def subscription_item(subscription: dict) -> dict:
    return subscription["items"]["data"][0]


def subscription_sync(*, subscription_id: str, source: str = "stripe") -> list[Transition]:
    """The one writer of a customer's plan: from the subscription as Stripe has it now
    (fetched again, whatever event brought us here, and only once no other sync of it
    runs), so events may come in any order and overlap."""

    def run() -> list[Transition]:
        subscription = gateway.subscription_retrieve(subscription_id=subscription_id)
        card = subscription.get("default_payment_method")
        if card and not PaymentMethod.objects.filter(stripe_id=card).exists():
            # The card Checkout took for the subscription is one of the customer's cards too.
            payment_method_sync(stripe_id=card, source=source)
        if card and subscription["status"] in CARD_FOLLOWS_ORDER:
            # Checkout sets the subscription's own card, which Stripe charges before the
            # customer's default: without it, renewals and retries go to our primary card.
            subscription = gateway.subscription_default_payment_method_clear(
                subscription_id=subscription_id, payment_method_id=card
            )
        mirror.object_mirror(subscription)
        discounts.subscription_discounts_follow(
            customer=_customer_of(subscription), subscription=subscription
        )
        return _subscription_apply(
            subscription, source=source, change_details=_change_money(subscription)
        )

    _ran, transitions = object_sync(stripe_id=subscription_id, run=run)
    return transitions or []


def _change_money(subscription: dict) -> dict | None:
    """What the invoice of a plan change about to be applied charged or credited, for its
    email; None when the plan does not change here or no paid switch invoice says so."""
    customer = _customer_of(subscription)
    current = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
    product = subscription_item(subscription)["price"]["product"]
    if current is None or not current.is_live or product == f"plan_{current.plan.code}":
        return None
    invoice_id = _id(subscription.get("latest_invoice"))
    if not invoice_id:
        return None
    invoice = gateway.object_retrieve(object_type="invoice", object_id=invoice_id)
    if not invoice:
        return None
    if invoice["billing_reason"] != "subscription_update" or invoice["status"] != "paid":
        return None
    starting, ending = invoice["starting_balance"] or 0, invoice["ending_balance"] or 0
    return {
        "charged": invoice["amount_paid"],
        "credit_used": max(0, ending - starting),
        "credited": max(0, starting - ending),
        "currency": invoice["currency"],
    }


@transaction.atomic
def _subscription_apply(
    subscription: dict, *, source: str, change_details: dict | None = None
) -> list[Transition]:
    subscription_id = subscription["id"]
    status = STATUS_FROM_STRIPE.get(subscription["status"])
    customer = _customer_of(subscription)
    item = subscription_item(subscription)
    product = item["price"]["product"]
    plan = Plan.objects.filter(code=product.removeprefix("plan_")).first()
    if status is None or customer is None or plan is None or not product.startswith("plan_"):
        logger.info("Subscription %s is not one of ours to follow yet", subscription_id)
        return []
    period_start, period_end = item.get("current_period_start"), item.get("current_period_end")
    transitions = customer_plan_apply(
        customer=customer,
        plan=plan,
        status=status,
        current_period_start=datetime.fromtimestamp(period_start, UTC) if period_start else None,
        current_period_end=datetime.fromtimestamp(period_end, UTC) if period_end else None,
        cancel_at_period_end=bool(subscription["cancel_at_period_end"]),
        subscription_id=subscription_id,
        change_details=change_details,
    )
    for transition in transitions:
        billing_entries_record(
            customer_ids=[customer.customer_id],
            kind=str(transition),
            source=source,
            plan=plan.name,
            subscription=subscription_id,
            plan_code=plan.code,
            status=status,
        )
    # A paid plan that starts, renews or changes has its cycle's current invoice open.
    invoicing.current_invoice_ensure(customer=customer)
    return transitions


# A start expires the sessions of the generations just before its own; each start does so,
# so only one left behind by a start that died midway can need more than the last one.
OLDER_GENERATIONS_EXPIRED = 3


def plan_upgrade_start(
    *,
    customer: Customer,
    email: str,
    plan: Plan,
    success_url: str,
    cancel_url: str,
) -> str:
    """Open Checkout in subscription mode for a customer without a plan; returns its URL.
    The portal trial's remaining days carry over when the plan allows a trial.

    One payable session at a time, however many clicks, tabs or concurrent requests: the
    account's open session for this plan is reused; otherwise the next generation's
    session is created under a key of (account, generation), so concurrent starts get
    the same session from Stripe, and the older generations' sessions are expired after."""
    current = CustomerPlan.objects.filter(customer=customer).first()
    if current and current.is_live:
        raise AlreadySubscribed()
    price_id = _price_id(plan)
    billing_info = billing_info_ensure(customer=customer, email=email)
    # Our projection may lag (a paid Checkout whose webhooks are late): ask Stripe too.
    if gateway.customer_live_subscription_exists(
        stripe_customer_id=billing_info.stripe_id, customer_id=customer.customer_id
    ):
        raise AlreadySubscribed()
    latest = UpgradeCheckout.objects.filter(customer=customer).order_by("-generation").first()
    if (
        latest is not None
        and latest.plan_code == plan.code
        and gateway.checkout_session_is_open(session_id=latest.session_id)
    ):
        return latest.url
    generation = latest.generation + 1 if latest else 0
    trial_end = None
    if plan.trial_allowed and customer.trial_ends_at - timezone.now() >= CHECKOUT_MIN_TRIAL:
        trial_end = int(customer.trial_ends_at.timestamp())
    session_id, url = gateway.checkout_subscription_session_create(
        stripe_customer_id=billing_info.stripe_id,
        customer_id=customer.customer_id,
        plan_code=plan.code,
        price_id=price_id,
        trial_end=trial_end,
        success_url=success_url,
        cancel_url=cancel_url,
        request_key=f"generation-{generation}",
    )  # fmt: skip
    try:
        with transaction.atomic():
            UpgradeCheckout.objects.create(
                customer=customer,
                generation=generation,
                plan_code=plan.code,
                session_id=session_id,
                url=url,
            )
    except IntegrityError:  # a concurrent start recorded this generation's session
        return UpgradeCheckout.objects.get(customer=customer, generation=generation).url
    # Only then expire the older generations' sessions, so two tabs cannot both pay. Never
    # "every open session but mine": a concurrent start of the next generation may have
    # made its session and not recorded it yet, and each would expire the other's.
    older = UpgradeCheckout.objects.filter(
        customer=customer, generation__gte=generation - OLDER_GENERATIONS_EXPIRED,
        generation__lt=generation,
    ).values_list("session_id", flat=True)  # fmt: skip
    gateway.checkout_sessions_expire(session_ids=list(older))
    return url


def plan_upgrade_complete(*, customer: Customer, session_id: str) -> list[Transition]:
    """Checkout's return page: the same sync as the webhooks. A session of another
    Stripe customer is refused with LookupError."""
    billing_info = BillingInfo.objects.for_customer(customer)
    stripe_customer, subscription_id = gateway.checkout_session_subscription(session_id=session_id)
    if billing_info is None or stripe_customer != billing_info.stripe_id:
        raise LookupError(session_id)
    if subscription_id is None:
        return []
    return subscription_sync(subscription_id=subscription_id, source="portal")


def plan_live(*, customer: Customer) -> CustomerPlan:
    """The customer's plan that is on (trial included); BillingError when there is none."""
    return _live_plan(customer)


def _live_plan(customer: Customer) -> CustomerPlan:
    current = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
    if current is None or not current.is_live:
        raise errors.BillingError("You have no plan to change yet: choose one first.")
    return current


@dataclass(frozen=True)
class PlanChangePreview:
    """What switching now is invoiced, from Stripe's preview of that invoice: `amount_due`
    is what Stripe charges now (the total, tax included, less the account's credit)."""

    amount_due: int
    currency: str
    proration_date: int
    lines: list[tuple[str, int]]
    ends_trial: bool = False
    total: int = 0
    tax: int = 0  # included in `total`; the lines are before tax
    credit_used: int = 0  # of the account's credit, toward this invoice
    credit_created: int = 0  # a downgrade's unused time, added to the account's credit
    credit_left: int = 0  # the account's credit after this invoice


def plan_change_ends_trial(*, current: CustomerPlan, plan: Plan) -> bool:
    """A plan without a trial cannot be trialled: switching to it in a trial ends the trial
    now, and its first period is charged at once."""
    return current.status == CustomerPlan.Status.TRIALING and not plan.trial_allowed


def plan_change_preview(*, customer: Customer, plan: Plan) -> PlanChangePreview:
    """What switching now would be invoiced, as Stripe computes it."""
    current = _live_plan(customer)
    if not PaymentMethod.objects.for_customer(customer).exists():
        raise CardNeeded()
    subscription = gateway.subscription_retrieve(subscription_id=current.subscription_id)
    proration_date = int(time.time())
    test_clock = subscription.get("test_clock")
    if test_clock:  # a test clock's subscription lives at the clock's time
        proration_date = gateway.test_clock_now(test_clock_id=test_clock)
    ends_trial = plan_change_ends_trial(current=current, plan=plan)
    invoice = gateway.subscription_change_preview(
        stripe_customer_id=subscription["customer"],
        subscription_id=current.subscription_id,
        item_id=subscription_item(subscription)["id"],
        price_id=_price_id(plan),
        proration_date=proration_date,
        trial_end_now=ends_trial,
    )
    prorated = any(
        ((line.get("parent") or {}).get("subscription_item_details") or {}).get("proration")
        for line in invoice["lines"]["data"]
    )
    if not ends_trial and not prorated:
        # Nothing is invoiced now (a switch within the trial, or to the same price): the
        # preview is then the next renewal, which is not what this page prices.
        return PlanChangePreview(
            amount_due=0, currency=invoice["currency"], proration_date=proration_date, lines=[]
        )
    # The invoice issued at once: its own totals, as Stripe will charge them.
    total, starting = invoice["total"], invoice.get("starting_balance") or 0
    return PlanChangePreview(
        amount_due=invoice["amount_due"],
        currency=invoice["currency"],
        proration_date=proration_date,
        lines=[(line["description"], line["amount"]) for line in invoice["lines"]["data"]],
        ends_trial=ends_trial,
        total=total,
        tax=sum(tax["amount"] for tax in invoice.get("total_taxes") or []),
        credit_used=min(-starting, total) if starting < 0 and total > 0 else 0,
        credit_created=max(0, -total),
        credit_left=max(0, -(total + starting)),
    )


def _price_id(plan: Plan) -> str:
    # The id recorded by the last push, never "a mirrored price with that lookup key": after
    # a Stripe reset or a change of account, the mirror still holds the old account's prices.
    price_id = plan.stripe_price_id
    if not price_id:
        raise errors.BillingError("This plan cannot be bought right now.")
    return price_id


@dataclass(frozen=True)
class PlanChangeResult:
    """A switch is made, or waits for the customer to confirm its payment on Stripe's
    invoice page (`pay_url`) until `expires_at`."""

    applied: bool
    pay_url: str = ""
    amount_due: int = 0
    currency: str = ""
    expires_at: datetime | None = None


def plan_change(
    *, customer: Customer, plan: Plan, proration_date: int, source: str = "portal"
) -> PlanChangeResult:
    """Switch now, at the moment the preview priced, with the proration invoiced at once,
    and only if it is paid: a decline raises PlanChangeDeclined with the plan as it was; a
    card that needs authentication leaves the switch pending at Stripe until the invoice
    is paid (the webhook then applies it) or it expires. `source` is who asked (the
    customer, or staff from the support page)."""
    current = _live_plan(customer)
    if not PaymentMethod.objects.for_customer(customer).exists():
        raise CardNeeded()
    subscription = gateway.subscription_retrieve(subscription_id=current.subscription_id)
    pending = subscription.get("pending_update")
    if pending and _pending_price(pending) == _price_id(plan):
        # The same switch again (a second click, a second tab): it still waits for the
        # same payment, which voiding would lose.
        return _pending_change_result(subscription=subscription, plan=plan)
    if pending:  # an earlier switch to another plan still waiting: this one wins
        _pending_change_drop(customer=customer, subscription=subscription, kind="withdrawn")
    try:
        subscription = gateway.subscription_change_price(
            subscription_id=current.subscription_id,
            item_id=subscription_item(subscription)["id"],
            price_id=_price_id(plan),
            proration_date=proration_date,
            trial_end_now=plan_change_ends_trial(current=current, plan=plan),
        )
    except errors.PaymentDeclined as error:
        held = gateway.subscription_retrieve(subscription_id=current.subscription_id)
        _pending_change_drop(customer=customer, subscription=held, kind=None)
        billing_entries_record(
            customer_ids=[customer.customer_id],
            kind="plan_change_declined",
            source=source,
            plan=plan.name,
            plan_code=plan.code,
            subscription=current.subscription_id,
            decline_code=error.decline_code or "",
        )
        raise errors.PlanChangeDeclined(
            f"{error.user_message} You are still on {current.plan.name}: the switch to "
            f"{plan.name} was not made and nothing was charged.",
            decline_code=error.decline_code,
        ) from error
    if subscription.get("pending_update"):
        return _pending_change_record(
            customer=customer, current=current, plan=plan, subscription=subscription,
            source=source,
        )  # fmt: skip
    subscription_sync(subscription_id=current.subscription_id, source=source)
    return PlanChangeResult(applied=True)


def _pending_price(pending_update: dict) -> str:
    items = pending_update.get("subscription_items") or []
    price = (items[0].get("price") if items else None) or ""
    return _id(price)


def _pending_change_result(*, subscription: dict, plan: Plan) -> PlanChangeResult:
    invoice = (
        gateway.object_retrieve(
            object_type="invoice", object_id=_id(subscription["latest_invoice"])
        )
        or {}
    )
    return PlanChangeResult(
        applied=False,
        pay_url=invoice.get("hosted_invoice_url") or "",
        amount_due=invoice.get("amount_due") or 0,
        currency=invoice.get("currency") or plan.currency,
        expires_at=datetime.fromtimestamp(subscription["pending_update"]["expires_at"], UTC),
    )


def _id(value) -> str:
    return value.get("id", "") if isinstance(value, dict) else (value or "")


def _pending_change_record(
    *, customer: Customer, current: CustomerPlan, plan: Plan, subscription: dict, source: str
) -> PlanChangeResult:
    """The bank wants the customer to confirm the payment: the switch waits at Stripe.
    Recorded in the timeline (the plans page reads it from there) and emailed with the
    link, in case the customer closes the invoice page."""
    invoice = (
        gateway.object_retrieve(
            object_type="invoice", object_id=_id(subscription["latest_invoice"])
        )
        or {}
    )
    expires_at = subscription["pending_update"]["expires_at"]
    details = {
        "pay_url": invoice.get("hosted_invoice_url") or "",
        "amount": invoice.get("amount_due") or 0,
        "currency": invoice.get("currency") or plan.currency,
        "expires_at": expires_at,
    }
    with transaction.atomic():
        billing_entries_record(
            customer_ids=[customer.customer_id],
            kind="plan_change_pending",
            source=source,
            plan=plan.name,
            plan_code=plan.code,
            plan_name=plan.name,
            subscription=subscription["id"],
            invoice=_id(subscription["latest_invoice"]),
            **details,
        )
        _plan_change_email(customer=customer, template="plan_change_pending", plan=plan,
                           previous=current.plan, details=details)  # fmt: skip
    return PlanChangeResult(
        applied=False,
        pay_url=details["pay_url"],
        amount_due=details["amount"],
        currency=details["currency"],
        expires_at=datetime.fromtimestamp(expires_at, UTC),
    )


def _plan_change_email(
    *, customer: Customer, template: str, plan: Plan, previous: Plan | None, details: dict
) -> None:
    from licensing import tasks

    transaction.on_commit(
        partial(
            tasks.plan_email_send.delay,
            customer_id=customer.customer_id,
            template=template,
            plan_code=plan.code,
            previous_plan_code=previous.code if previous else "",
            details=details,
        )
    )


def _pending_change_drop(*, customer: Customer, subscription: dict, kind: str | None) -> None:
    """Void the open invoice of a switch that waits for its payment, so nobody pays it
    later (the pending update goes with it). Best effort: unvoided, Stripe drops the
    update within 23 hours anyway."""
    invoice_id = _id(subscription.get("latest_invoice"))
    if not subscription.get("pending_update") or not invoice_id:
        return
    try:
        gateway.invoice_void(invoice_id=invoice_id)
    except errors.BillingError:
        logger.warning("Could not void invoice %s of a held plan change", invoice_id)
        return
    pending = pending_plan_change(customer=customer)
    if kind and pending is not None:
        billing_entries_record(
            customer_ids=[customer.customer_id],
            kind=f"plan_change_{kind}",
            source="portal",
            plan=pending.plan_name,
            plan_code=pending.plan_code,
            subscription=subscription["id"],
        )


# The timeline entries that open and close a switch waiting for its payment.
PENDING_CHANGE_KINDS = (
    "plan_change_pending",
    "plan_change_withdrawn",
    "plan_change_expired",
    "plan_change_declined",
    "plan_changed",
)


@dataclass(frozen=True)
class PendingPlanChange:
    plan_name: str
    plan_code: str
    pay_url: str
    amount: int
    currency: str
    expires_at: datetime


def pending_plan_change(
    *, customer: Customer, now: datetime | None = None
) -> PendingPlanChange | None:
    """The switch that waits for the customer to confirm its payment, if any (one query)."""
    last = (
        Entry.objects.filter(customer=customer, kind__in=PENDING_CHANGE_KINDS)
        .order_by("-created_at", "-id")
        .first()
    )
    now = now or timezone.now()
    if last is None or last.kind != "plan_change_pending":
        return None
    if last.data.get("expires_at", 0) <= now.timestamp():
        return None
    data = last.data
    return PendingPlanChange(
        plan_name=data.get("plan_name", ""),
        plan_code=data.get("plan_code", ""),
        pay_url=data.get("pay_url", ""),
        amount=data.get("amount", 0),
        currency=data.get("currency", ""),
        expires_at=datetime.fromtimestamp(data["expires_at"], UTC),
    )


def plan_change_expired(*, subscription_id: str) -> None:
    """Stripe dropped a switch whose payment was not made in time: the plan stays (the sync
    confirms it) and the customer is told, once per pending switch."""
    subscription = gateway.subscription_retrieve(subscription_id=subscription_id)
    customer = _customer_of(subscription)
    subscription_sync(subscription_id=subscription_id)
    if customer is None:
        return
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        last = (
            Entry.objects.filter(customer=customer, kind__in=PENDING_CHANGE_KINDS)
            .order_by("-created_at", "-id")
            .first()
        )
        if last is None or last.kind != "plan_change_pending":
            return  # already told, withdrawn or applied
        plan = Plan.objects.filter(code=last.data.get("plan_code", "")).first()
        current = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
        billing_entries_record(
            customer_ids=[customer.customer_id],
            kind="plan_change_expired",
            source="stripe",
            plan=plan.name if plan else "",
            plan_code=last.data.get("plan_code", ""),
            subscription=subscription_id,
        )
        if plan is not None:
            _plan_change_email(customer=customer, template="plan_change_expired", plan=plan,
                               previous=current.plan if current else None, details={})  # fmt: skip


def plan_cancel_at_period_end(
    *, customer: Customer, cancel: bool, source: str = "portal"
) -> list[Transition]:
    """Cancel at the end of the paid period (cancel=True), or resume before it ends."""
    current = _live_plan(customer)
    last = Entry.objects.filter(customer=customer).order_by("-id").first()
    gateway.subscription_cancel_at_period_end_set(
        subscription_id=current.subscription_id,
        cancel=cancel,
        # A new key after each timeline entry: cancel, resume, cancel again are three writes.
        request_key=f"{cancel}:{last.pk if last else 0}",
    )
    return subscription_sync(subscription_id=current.subscription_id, source=source)
