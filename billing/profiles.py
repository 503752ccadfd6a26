"""Shared billing profiles: an account may pay with another account's billing profile (its
Stripe customer, cards, details and card order). Each account keeps its own plan,
subscription, usage, invoices and license; its subscription carries its own customer_id
in Stripe's metadata, so each invoice of the shared Stripe customer says whose it is.

The paying account of a profile is the first account linked to it (the one whose
Stripe customer it was made for); only its owners manage the cards. No Stripe call is
made while a transaction is open."""

from django.db import transaction
from django.utils import timezone

from accounts.models import Customer, Membership, User
from audit.ledger import Source, entry_record
from licensing.models import CustomerPlan
from licensing.services import LIVE_STATUSES

from . import gateway
from .cards import billing_info_ensure
from .errors import BillingError
from .models import BillingInfo, CustomerBilling


class NotAnOwner(Exception):
    """The person is not an owner of every account the change concerns."""


def billing_info_payer(billing_info: BillingInfo) -> Customer | None:
    """The account a billing profile belongs to: the first linked to it."""
    link = (
        CustomerBilling.objects.select_related("customer")
        .filter(billing_info=billing_info)
        .order_by("created_at", "customer_id")
        .first()
    )
    return link.customer if link else None


def customer_payer(*, customer: Customer) -> Customer:
    """The account whose billing profile this account pays with (itself, unless shared)."""
    billing_info = BillingInfo.objects.for_customer(customer)
    payer = billing_info_payer(billing_info) if billing_info else None
    return payer or customer


def is_owner(*, user: User, customer: Customer) -> bool:
    return Membership.objects.filter(
        user=user, customer=customer, role=Membership.Role.OWNER
    ).exists()


def _has_live_plan(customer: Customer) -> bool:
    return CustomerPlan.objects.filter(customer=customer, status__in=LIVE_STATUSES).exists()


def _record(customer: Customer, kind: str, actor: User, sentence: str, **data) -> None:
    entry_record(
        customer_id=customer.customer_id,
        kind=kind,
        source=Source.CUSTOMER,
        actor=actor,
        sentence=sentence,
        data=data,
    )


def billing_profile_share(*, customer: Customer, payer: Customer, actor: User) -> BillingInfo:
    """Make `customer` pay with `payer`'s billing profile. The actor must own both. Refused
    while `customer` has a plan on its own profile (Stripe cannot move a subscription to
    another Stripe customer) or other accounts pay with `customer`'s profile."""
    if not (is_owner(user=actor, customer=customer) and is_owner(user=actor, customer=payer)):
        raise NotAnOwner()
    if customer.pk == payer.pk:
        raise BillingError("An account pays with its own billing profile already.")
    if customer_payer(customer=payer).pk != payer.pk:
        raise BillingError(f"{payer.display_name} pays with another account's billing profile.")
    current = BillingInfo.objects.for_customer(customer)
    if (
        current is not None
        and billing_info_payer(current).pk == customer.pk
        and current.customer_links.exclude(customer=customer).exists()
    ):
        raise BillingError("Other accounts pay with this account's billing profile.")
    if _has_live_plan(customer):
        raise BillingError(
            "This account's plan is paid with its own billing profile: it can share another "
            "account's once the plan has ended."
        )
    billing_info = billing_info_ensure(customer=payer, email=actor.email)
    if current is not None and current.pk == billing_info.pk:
        return billing_info  # shared already (a second click)
    with transaction.atomic():
        # Linked now, after the payer's own link: the first link names the payer.
        CustomerBilling.objects.update_or_create(
            customer=customer, defaults={"billing_info": billing_info, "created_at": timezone.now()}
        )
        _record(
            customer,
            "billing_profile_shared",
            actor,
            f"Now pays with the billing profile of {payer.display_name}.",
            payer=payer.customer_id,
            stripe_customer=billing_info.stripe_id,
        )
        _record(
            payer,
            "billing_profile_shared",
            actor,
            f"{customer.display_name} now pays with this account's billing profile.",
            account=customer.customer_id,
            stripe_customer=billing_info.stripe_id,
        )
    return billing_info


def billing_profile_detach(*, customer: Customer, actor: User) -> BillingInfo:
    """Give a sharing account its own billing profile again: a new Stripe customer, with
    no cards yet. Nothing already paid moves: its invoices stay where they were paid.
    Refused while its plan is on (its subscription lives on the shared Stripe customer)."""
    if not is_owner(user=actor, customer=customer):
        raise NotAnOwner()
    link = CustomerBilling.objects.select_related("billing_info").filter(customer=customer).first()
    payer = billing_info_payer(link.billing_info) if link else None
    if payer is None or payer.pk == customer.pk:
        raise BillingError("This account pays with its own billing profile already.")
    if _has_live_plan(customer):
        raise BillingError(
            f"This account's plan is paid through {payer.display_name}'s billing profile: "
            "it can have its own once the plan has ended."
        )
    # Keyed by this share (its link's moment): a retry makes no second customer, and a
    # later share and detach makes a new one.
    stripe_id = gateway.customer_create(
        customer_id=customer.customer_id,
        email=actor.email,
        name=customer.name,
        request_key=f"detach:{link.billing_info.stripe_id}:{link.created_at.timestamp()}",
    )
    with transaction.atomic():
        billing_info, _ = BillingInfo.objects.get_or_create(stripe_id=stripe_id)
        updated = CustomerBilling.objects.filter(customer=customer, billing_info=link.billing_info)
        if not updated.update(billing_info=billing_info, created_at=timezone.now()):
            return BillingInfo.objects.for_customer(customer)  # detached meanwhile
        for account, sentence in [
            (customer, f"Has its own billing profile again (was {payer.display_name}'s)."),
            (payer, f"{customer.display_name} no longer pays with this billing profile."),
        ]:
            _record(
                account,
                "billing_profile_detached",
                actor,
                sentence,
                account=customer.customer_id,
                stripe_customer=stripe_id,
                previous_stripe_customer=link.billing_info.stripe_id,
            )
    return billing_info
