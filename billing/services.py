"""Writes for billing. Each is called the same way from pages, webhooks, admin and tasks."""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from djstripe.models import WebhookEndpoint

from accounts.models import Customer
from licensing.catalog import Catalog
from licensing.models import CustomerPlan, Plan
from licensing.services import LIVE_STATUSES, Transition, catalog_load, customer_plan_apply

from . import gateway, mirror
from .models import BillingEvent, BillingInfo, CustomerBilling, PaymentMethod

logger = logging.getLogger(__name__)


class CannotRemoveLastCard(gateway.BillingError):
    default_message = (
        "This is your only card and your paid plan renews with it. Add another card "
        "before removing this one, or cancel the plan first."
    )


def billing_info_ensure(*, customer: Customer, email: str) -> BillingInfo:
    """The customer account's Stripe customer, created once and only once.

    Concurrent callers for one account queue on the account's row (PostgreSQL) or on the
    write lock (SQLite), and the create carries a key derived from our id, so twenty
    clicks make one Stripe customer. A link lost on our side is found again by the
    `customer_id` Stripe keeps in the customer's metadata. If Stripe fails midway the
    transaction leaves nothing behind, and the next call converges on the same customer.
    """
    existing = BillingInfo.objects.for_customer(customer)
    if existing:
        return existing

    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        existing = BillingInfo.objects.for_customer(customer)
        if existing:
            return existing
        stripe_id = gateway.customer_find_by_customer_id(
            customer_id=customer.customer_id
        ) or gateway.customer_create(
            customer_id=customer.customer_id, email=email, name=customer.name
        )
        billing_info, _ = BillingInfo.objects.get_or_create(stripe_id=stripe_id)
        CustomerBilling.objects.create(customer=customer, billing_info=billing_info)
        BillingEvent.objects.create(
            customer=customer,
            kind=BillingEvent.Kind.STRIPE_CUSTOMER_CREATED,
            data={"stripe_customer": stripe_id},
        )
    return billing_info


def billing_info_has_live_plan(billing_info: BillingInfo) -> bool:
    """Whether an account billing through this Stripe customer has a plan that is paid for
    or will be (its trial included): it renews with the cards on file."""
    return CustomerPlan.objects.filter(
        customer__billing__billing_info=billing_info, status__in=LIVE_STATUSES
    ).exists()


def _timeline(billing_info: BillingInfo, kind: str, source: str, **data) -> list[BillingEvent]:
    """One timeline entry for each customer account that bills through this Stripe customer."""
    return BillingEvent.objects.bulk_create(
        BillingEvent(customer_id=link.customer_id, kind=kind, source=source, data=data)
        for link in billing_info.customer_links.all()
    )


def _compact(billing_info: BillingInfo) -> list[PaymentMethod]:
    """Renumber the cards 0, 1, 2… in their current order; returns them in order."""
    cards = list(billing_info.payment_methods.order_by("order", "created_at"))
    changed = []
    for position, card in enumerate(cards):
        if card.order != position:
            card.order = position
            changed.append(card)
    PaymentMethod.objects.bulk_update(changed, ["order"])
    return cards


@transaction.atomic
def payment_method_sync(*, stripe_id: str, source: str = "stripe") -> PaymentMethod | None:
    """Make our row for one payment method follow Stripe's state, whatever the order in
    which the return page and the webhooks (attached, detached, checkout completed, setup
    intent succeeded) arrive: attached to a customer we know → recorded once, at the end of
    the order; detached → gone. The first card becomes Stripe's default."""
    stripe_pm = gateway.payment_method_retrieve(payment_method_id=stripe_id)
    stripe_customer = stripe_pm["customer"]  # an id: the gateway does not expand it
    billing_info = (
        BillingInfo.objects.select_for_update().filter(stripe_id=stripe_customer).first()
        if stripe_customer
        else None
    )
    existing = PaymentMethod.objects.select_related("billing_info").filter(stripe_id=stripe_id)
    existing = existing.first()

    if billing_info is None:
        if existing:
            _payment_method_forget(existing, source=source)
        return None
    mirror.payment_method_mirror(stripe_pm)
    if existing:
        return existing

    last = billing_info.payment_methods.aggregate(last=Max("order"))["last"]
    card = PaymentMethod.objects.create(
        billing_info=billing_info, stripe_id=stripe_id, order=0 if last is None else last + 1
    )
    _timeline(billing_info, BillingEvent.Kind.CARD_ADDED, source, payment_method=stripe_id)
    if card.order == 0:
        gateway.customer_default_payment_method_set(
            stripe_customer_id=billing_info.stripe_id,
            payment_method_id=stripe_id,
            request_key=f"first-card:{stripe_id}",
        )
    return card


def _payment_method_forget(card: PaymentMethod, *, source: str) -> None:
    billing_info = card.billing_info
    was_primary = card.order == 0
    card.delete()
    cards = _compact(billing_info)
    _timeline(billing_info, BillingEvent.Kind.CARD_REMOVED, source, payment_method=card.stripe_id)
    if was_primary and cards:
        gateway.customer_default_payment_method_set(
            stripe_customer_id=billing_info.stripe_id,
            payment_method_id=cards[0].stripe_id,
            request_key=f"after-removal:{card.stripe_id}",
        )


def checkout_setup_complete(
    *, session_id: str, billing_info: BillingInfo | None = None
) -> PaymentMethod | None:
    """Record the card a setup-mode Checkout Session collected. With `billing_info` (the
    return page), a session of another Stripe customer is refused with LookupError."""
    stripe_customer, payment_method = gateway.checkout_session_setup_result(session_id=session_id)
    if billing_info is not None and stripe_customer != billing_info.stripe_id:
        raise LookupError(session_id)
    if payment_method is None:
        return None
    return payment_method_sync(stripe_id=payment_method, source="portal")


@transaction.atomic
def payment_method_move(*, card: PaymentMethod, offset: int, request_key: str) -> None:
    """Move a card up (offset -1) or down (+1) in the priority order."""
    billing_info = BillingInfo.objects.select_for_update().get(pk=card.billing_info_id)
    cards = _compact(billing_info)
    position = next(i for i, c in enumerate(cards) if c.pk == card.pk)
    target = position + offset
    if not 0 <= target < len(cards):
        return
    cards[position], cards[target] = cards[target], cards[position]
    _reorder(billing_info, cards, moved=card.stripe_id, request_key=request_key)


@transaction.atomic
def payment_method_make_primary(*, card: PaymentMethod, request_key: str) -> None:
    billing_info = BillingInfo.objects.select_for_update().get(pk=card.billing_info_id)
    cards = [c for c in _compact(billing_info) if c.pk != card.pk]
    _reorder(billing_info, [card, *cards], moved=card.stripe_id, request_key=request_key)


def _reorder(
    billing_info: BillingInfo, cards: list[PaymentMethod], *, moved: str, request_key: str
) -> None:
    previous_primary = billing_info.payment_methods.order_by("order").first()
    for position, card in enumerate(cards):
        card.order = position
    PaymentMethod.objects.bulk_update(cards, ["order"])
    order = [card.stripe_id for card in cards]
    if previous_primary and previous_primary.stripe_id != order[0]:
        _timeline(
            billing_info,
            BillingEvent.Kind.CARD_MADE_PRIMARY,
            "portal",
            payment_method=moved,
            order=order,
        )
        # Keyed by the page the click came from: a double click sends one write, and
        # making a card primary again later, from a new page, is a new one.
        gateway.customer_default_payment_method_set(
            stripe_customer_id=billing_info.stripe_id,
            payment_method_id=order[0],
            request_key=f"made-primary:{request_key}:{order[0]}",
        )
    else:
        _timeline(
            billing_info,
            BillingEvent.Kind.CARD_REORDERED,
            "portal",
            payment_method=moved,
            order=order,
        )


@transaction.atomic
def payment_method_remove(*, card: PaymentMethod) -> None:
    """Detach the card at Stripe and forget it. The last card stays while a paid plan is on."""
    billing_info = BillingInfo.objects.select_for_update().get(pk=card.billing_info_id)
    if billing_info.payment_methods.count() == 1 and billing_info_has_live_plan(billing_info):
        raise CannotRemoveLastCard()
    gateway.payment_method_detach(payment_method_id=card.stripe_id)
    _payment_method_forget(card, source="portal")


def billing_details_update(
    *, customer: Customer, email: str, details: gateway.BillingDetails, request_key: str
) -> None:
    """Write the billing details to Stripe; only the fact that they changed is kept here."""
    billing_info = billing_info_ensure(customer=customer, email=email)
    gateway.customer_billing_details_update(
        stripe_customer_id=billing_info.stripe_id, details=details, request_key=request_key
    )
    _timeline(billing_info, BillingEvent.Kind.DETAILS_UPDATED, "portal")


def webhook_endpoint_ensure(*, base_url: str) -> tuple[WebhookEndpoint, str]:
    """Stripe sends its events to this portal's dj-stripe URL, with a secret dj-stripe
    knows. Idempotent: returns the endpoint and what was done (created, updated, unchanged)."""
    for local in WebhookEndpoint.objects.filter(livemode=settings.STRIPE_LIVE_MODE):
        expected = base_url + reverse(
            "djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": local.djstripe_uuid}
        )
        remote = gateway.webhook_endpoint_retrieve(endpoint_id=local.id)
        if remote is None:
            local.delete()  # gone at Stripe (an emulator reset, a dashboard deletion)
            continue
        if (
            remote["url"] == expected
            and remote["status"] == "enabled"
            and sorted(remote["enabled_events"]) == sorted(gateway.WEBHOOK_EVENTS)
        ):
            return local, "unchanged"
        remote = gateway.webhook_endpoint_update(endpoint_id=local.id, url=expected)
        remote["secret"] = local.secret  # Stripe shows the secret only once
        return WebhookEndpoint.sync_from_stripe_data(remote), "updated"

    djstripe_uuid = str(uuid.uuid4())
    url = base_url + reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": djstripe_uuid})
    remote = gateway.webhook_endpoint_create(url=url, djstripe_uuid=djstripe_uuid)
    return WebhookEndpoint.sync_from_stripe_data(remote), "created"


def catalog_push(*, catalog: Catalog) -> list[str]:
    """Push the sold plans to Stripe (a product each, a monthly price found by its lookup
    key), then load the catalog into our tables. Idempotent: a second run creates nothing.
    A changed amount makes a new price and moves the lookup key to it."""
    report = []
    price_ids = {}
    for plan in catalog.plans:
        if not plan.is_sold:
            continue
        outcome = gateway.product_ensure(
            product_id=plan.product_id, name=plan.name, plan_code=plan.code
        )
        price = gateway.price_for_lookup_key(lookup_key=plan.lookup_key)
        unchanged = price is not None and (
            price["unit_amount"] == plan.amount
            and price["currency"] == plan.currency
            and price["product"] == plan.product_id
            and price["active"]
        )
        changed = (
            [price]
            if unchanged
            else gateway.price_create_monthly(
                product_id=plan.product_id,
                amount=plan.amount,
                currency=plan.currency,
                lookup_key=plan.lookup_key,
                replaces=price["id"] if price else None,
            )
        )
        for changed_price in changed:
            mirror.price_mirror(changed_price)
        price_ids[plan.code] = changed[0]["id"]
        report.append(
            f"{plan.code}: product {plan.product_id} {outcome}, price {changed[0]['id']} "
            f"{'unchanged' if unchanged else 'created'}"
        )
    catalog_load(catalog=catalog, price_ids=price_ids)
    return report


# --- Plans ------------------------------------------------------------------------------------

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
# Stripe wants a Checkout trial to end at least 48 hours ahead; shorter remainders are dropped.
CHECKOUT_MIN_TRIAL = timedelta(hours=48)


class AlreadySubscribed(gateway.BillingError):
    default_message = "You already have a plan. Change it from the plans page instead."


class CardNeeded(gateway.BillingError):
    default_message = "Add a card first: a plan change is charged at once."


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


@transaction.atomic
def subscription_sync(*, subscription_id: str, source: str = "stripe") -> list[Transition]:
    """The one writer of a customer's plan: from the subscription as Stripe has it now
    (fetched again, whatever event brought us here), so events may come in any order."""
    subscription = gateway.subscription_retrieve(subscription_id=subscription_id)
    status = STATUS_FROM_STRIPE.get(subscription["status"])
    customer = _customer_of(subscription)
    item = subscription_item(subscription)
    product = item["price"]["product"]
    plan = Plan.objects.filter(code=product.removeprefix("plan_")).first()
    if status is None or customer is None or plan is None or not product.startswith("plan_"):
        logger.info("Subscription %s is not one of ours to follow yet", subscription_id)
        return []
    card = subscription.get("default_payment_method")
    if card and not PaymentMethod.objects.filter(stripe_id=card).exists():
        # The card Checkout took for the subscription is one of the customer's cards too.
        payment_method_sync(stripe_id=card, source=source)
    period_start, period_end = item.get("current_period_start"), item.get("current_period_end")
    transitions = customer_plan_apply(
        customer=customer,
        plan=plan,
        status=status,
        current_period_start=datetime.fromtimestamp(period_start, UTC) if period_start else None,
        current_period_end=datetime.fromtimestamp(period_end, UTC) if period_end else None,
        cancel_at_period_end=bool(subscription["cancel_at_period_end"]),
        subscription_id=subscription_id,
    )
    BillingEvent.objects.bulk_create(
        BillingEvent(
            customer=customer,
            kind=str(transition),
            source=source,
            data={"subscription": subscription_id, "plan": plan.code, "status": status},
        )
        for transition in transitions
    )
    return transitions


def plan_upgrade_start(
    *,
    customer: Customer,
    email: str,
    plan: Plan,
    success_url: str,
    cancel_url: str,
    request_key: str,
) -> str:
    """Open Checkout in subscription mode for a customer without a plan; returns its URL.
    The portal trial's remaining days carry over when the plan allows a trial."""
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
        request_key=request_key,
    )  # fmt: skip
    # Only then expire the others: two tabs cannot both pay, and a double click (the same
    # key, so the same session) keeps the session it was given.
    gateway.checkout_open_subscription_sessions_expire(
        stripe_customer_id=billing_info.stripe_id, keep=session_id
    )
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


def _live_plan(customer: Customer) -> CustomerPlan:
    current = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
    if current is None or not current.is_live:
        raise gateway.BillingError("You have no plan to change yet: choose one first.")
    return current


@dataclass(frozen=True)
class PlanChangePreview:
    amount_due: int
    currency: str
    proration_date: int
    lines: list[tuple[str, int]]


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
    invoice = gateway.subscription_change_preview(
        stripe_customer_id=subscription["customer"],
        subscription_id=current.subscription_id,
        item_id=subscription_item(subscription)["id"],
        price_id=_price_id(plan),
        proration_date=proration_date,
    )
    # The preview is the next invoice: prorations and the next renewal. What the switch
    # invoices at once is the prorations (Stripe marks them), with a credit kept, not paid.
    prorations = [
        (line["description"], line["amount"])
        for line in invoice["lines"]["data"]
        if ((line.get("parent") or {}).get("subscription_item_details") or {}).get("proration")
    ]
    return PlanChangePreview(
        amount_due=max(0, sum(amount for _description, amount in prorations)),
        currency=invoice["currency"],
        proration_date=proration_date,
        lines=prorations,
    )


def _price_id(plan: Plan) -> str:
    # The id recorded by the last push, never "a mirrored price with that lookup key": after
    # a Stripe reset or a change of account, the mirror still holds the old account's prices.
    price_id = plan.stripe_price_id
    if not price_id:
        raise gateway.BillingError("This plan cannot be bought right now.")
    return price_id


def plan_change(*, customer: Customer, plan: Plan, proration_date: int) -> list[Transition]:
    """Switch now, at the moment the preview priced, with the proration invoiced at once."""
    current = _live_plan(customer)
    if not PaymentMethod.objects.for_customer(customer).exists():
        raise CardNeeded()
    subscription = gateway.subscription_retrieve(subscription_id=current.subscription_id)
    gateway.subscription_change_price(
        subscription_id=current.subscription_id,
        item_id=subscription_item(subscription)["id"],
        price_id=_price_id(plan),
        proration_date=proration_date,
    )
    return subscription_sync(subscription_id=current.subscription_id, source="portal")


def plan_cancel_at_period_end(*, customer: Customer, cancel: bool) -> list[Transition]:
    """Cancel at the end of the paid period (cancel=True), or resume before it ends."""
    current = _live_plan(customer)
    last = BillingEvent.objects.filter(customer=customer).order_by("-id").first()
    gateway.subscription_cancel_at_period_end_set(
        subscription_id=current.subscription_id,
        cancel=cancel,
        # A new key after each timeline entry: cancel, resume, cancel again are three writes.
        request_key=f"{cancel}:{last.pk if last else 0}",
    )
    return subscription_sync(subscription_id=current.subscription_id, source="portal")
