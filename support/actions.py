"""Support actions: each one POST from the customer's support page that changes one thing,
through the service the rest of the portal uses, and writes exactly one audit entry
naming the staff member, the reason, the state before and after, and the Stripe request
ids it caused. Refusals (no permission, no reason, an erased or staff account) write
nothing and change nothing; a Stripe failure writes the entry as failed and changes
nothing here (actions that write only to our tables run in one transaction with it)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from functools import partial

from django import forms
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from djstripe import models as djstripe_models

from accounts.models import Customer
from audit.ledger import Source, entry_record
from audit.models import Entry
from billing import errors, gateway, invoice_sync, invoicing, plans
from billing.cards import payment_method_sync
from billing.events import stripe_event_replay
from billing.models import BillingInfo, Invoice, PaymentMethod, StripeEvent, SubscriptionDiscount
from billing.test_clocks import customer_test_clock_advance
from billing_portal.money import currency_exponent, money_format
from licensing.licenses import license_refresh
from licensing.models import CustomerPlan, License, Plan, SpendCap
from licensing.services import customer_trial_set

from . import permissions
from .models import Erasure

logger = logging.getLogger(__name__)

SENTENCE_MAX = 300  # audit.Entry.sentence


class ActionRefused(Exception):
    """Not done, nothing written: who may not, or on what it may not be done."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass
class Done:
    summary: str  # what was done, for the sentence: "Trial extended to 20 May 2026"
    details: dict = field(default_factory=dict)  # ids only, for machines
    payload: object = None  # what the page hands back (an export, a rendering)


@dataclass
class Outcome:
    entry: Entry
    succeeded: bool
    message: str
    payload: object = None
    error_param: str | None = None  # the form field a refusal was about


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        strip=True,
        error_messages={"required": "Say why: the reason goes into the customer's timeline."},
    )


def state_of(customer_id: str) -> dict:
    """What the support actions can change, as ids and values (no personal data): the
    entry's before and after, and what a replayed webhook changed."""
    customer = Customer.objects.get(pk=customer_id)
    plan = CustomerPlan.objects.select_related("plan").filter(customer_id=customer_id).first()
    current = License.objects.filter(customer_id=customer_id, revoked_at__isnull=True).first()
    discount = (
        SubscriptionDiscount.objects.filter(customer_id=customer_id, removed_at__isnull=True)
        .values_list("coupon_id", "stripe_discount_id")
        .first()
    )
    # The newest invoices (an action touches an open one, or the current cycle's): the
    # entry's size does not grow with the customer's history.
    invoice_rows = list(Invoice.objects.filter(customer_id=customer_id).order_by("-id")[:24])
    stripe_ids = [row.stripe_invoice_id for row in invoice_rows if row.stripe_invoice_id]
    stripe_status = dict(
        djstripe_models.Invoice.objects.filter(id__in=stripe_ids).values_list(
            "id", "stripe_data__status"
        )
    )
    return {
        "trial_ends_at": customer.trial_ends_at.isoformat(),
        "suspended": customer.suspended_at is not None,
        "plan": plan.plan.code if plan else None,
        "plan_status": plan.status if plan else None,
        "cancel_at_period_end": plan.cancel_at_period_end if plan else None,
        "current_period_end": plan.current_period_end.isoformat()
        if plan and plan.current_period_end
        else None,
        "cards": list(
            PaymentMethod.objects.filter(billing_info__customer_links__customer_id=customer_id)
            .order_by("order")
            .values_list("stripe_id", flat=True)
        ),
        "license": str(current.jti) if current else None,
        "discount": list(discount) if discount else None,
        "invoices": {
            str(row.pk): {
                "status": row.status,
                "stripe_status": stripe_status.get(row.stripe_invoice_id) or "",
                "synced_at": row.synced_at.isoformat() if row.synced_at else None,
            }
            for row in invoice_rows
        },
    }


def changed_keys(before: dict, after: dict) -> list[str]:
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


# --- The actions ------------------------------------------------------------------------------


def _billing_info(customer: Customer) -> BillingInfo:
    info = BillingInfo.objects.for_customer(customer)
    if info is None:
        raise ActionRefused("This customer has no Stripe customer yet.", status=409)
    return info


def resync(customer: Customer, staff, data: dict) -> Done:
    """The customer's plan and cards as Stripe has them now, and the current invoice's
    drift check: the same syncs the webhooks run."""
    info = _billing_info(customer)
    plan = CustomerPlan.objects.filter(customer=customer).first()
    if plan and plan.subscription_id:
        plans.subscription_sync(subscription_id=plan.subscription_id, source="staff")
    for stripe_id in list(info.payment_methods.values_list("stripe_id", flat=True)):
        payment_method_sync(stripe_id=stripe_id, source="staff")
    current = invoicing.current_invoice(customer=customer)
    if current is not None:
        invoice_sync.invoice_drift_check(invoice_id=current.pk, stripe_customer_id=info.stripe_id)
    return Done("Resynced from Stripe")


def license_reissue(customer: Customer, staff, data: dict) -> Done:
    issued = license_refresh(customer=customer, force=True)
    return Done("License reissued", {"jti": str(issued.jti) if issued else None})


def license_resend(customer: Customer, staff, data: dict) -> Done:
    from licensing.tasks import license_email_send

    current = License.objects.filter(customer=customer, revoked_at__isnull=True).first()
    if current is None:
        raise ActionRefused("This customer has no current license to send.", status=409)
    transaction.on_commit(partial(license_email_send.delay, jti=str(current.jti)))
    return Done("License emailed again to the billing contacts", {"jti": str(current.jti)})


class TrialForm(ReasonForm):
    trial_ends_on = forms.DateField(
        label="New end of the trial (UTC)", widget=forms.DateInput(attrs={"type": "date"})
    )


def trial_extend(customer: Customer, staff, data: dict) -> Done:
    ends_on = data["trial_ends_on"]
    trial_ends_at = datetime.combine(ends_on, time(23, 59, 59), tzinfo=UTC)
    if trial_ends_at <= timezone.now():
        raise ActionRefused("The new end of the trial must be in the future.", status=400)
    customer_trial_set(customer=customer, trial_ends_at=trial_ends_at, ledger=False)
    return Done(f"Trial extended to {trial_ends_at:%-d %B %Y}")


def usage_sync(customer: Customer, staff, data: dict) -> Done:
    current = invoicing.current_invoice(customer=customer)
    if current is None:
        raise ActionRefused("This customer has no invoice in progress to sync.", status=409)
    invoicing.invoice_lines_refresh(invoice=current)
    result = invoice_sync.invoice_sync_to_stripe(invoice_id=current.pk)
    if result.errors:
        raise errors.BillingError("; ".join(result.errors))
    return Done(
        f"Usage synced to Stripe ({result.created} created, {result.updated} updated, "
        f"{result.deleted} deleted)",
        {"invoice": current.pk, "skipped": result.skipped},
    )


class InvoiceForm(ReasonForm):
    invoice = forms.IntegerField(widget=forms.HiddenInput)


class InvoiceRetryForm(InvoiceForm):
    card = forms.CharField(label="Card to charge")


def _open_invoice(customer: Customer, pk: int) -> Invoice:
    """The customer's invoice, open at Stripe as last mirrored (Stripe refuses the rest
    anyway; refusing here keeps a double click from writing a second entry)."""
    invoice = Invoice.objects.filter(customer=customer, pk=pk).exclude(stripe_invoice_id="")
    invoice = invoice.first()
    if invoice is None:
        raise ActionRefused("No such invoice of this customer at Stripe.", status=404)
    status = (
        djstripe_models.Invoice.objects.filter(id=invoice.stripe_invoice_id)
        .values_list("stripe_data__status", flat=True)
        .first()
    )
    if status != "open":
        raise ActionRefused(f"This invoice is not open at Stripe (it is {status}).", status=409)
    return invoice


def _invoice_refresh(stripe_invoice: dict, customer: Customer) -> None:
    from billing import mirror

    mirror.object_mirror(stripe_invoice)
    plan = CustomerPlan.objects.filter(customer=customer).first()
    if plan and plan.subscription_id:
        plans.subscription_sync(subscription_id=plan.subscription_id, source="staff")


def invoice_retry(customer: Customer, staff, data: dict) -> Done:
    invoice = _open_invoice(customer, data["invoice"])
    card = PaymentMethod.objects.for_customer(customer).filter(stripe_id=data["card"]).first()
    if card is None:
        raise ActionRefused("That card is not one of this customer's.", status=400)
    last = Entry.objects.filter(customer=customer).order_by("-id").values_list("pk", flat=True)
    paid = gateway.invoice_pay(
        invoice_id=invoice.stripe_invoice_id,
        payment_method_id=card.stripe_id,
        request_key=str(last.first() or 0),  # a retry after any change is a new attempt
    )
    _invoice_refresh(paid, customer)
    number = invoice.number or invoice.stripe_invoice_id
    return Done(
        f"Payment of invoice {number} retried with the card at position {card.order + 1}: "
        f"{paid['status']}",
        {"invoice": invoice.pk, "payment_method": card.stripe_id},
    )


def invoice_void(customer: Customer, staff, data: dict) -> Done:
    invoice = _open_invoice(customer, data["invoice"])
    voided = gateway.invoice_void(invoice_id=invoice.stripe_invoice_id)
    _invoice_refresh(voided, customer)
    return Done(
        f"Invoice {invoice.number or invoice.stripe_invoice_id} voided", {"invoice": invoice.pk}
    )


def invoice_uncollectible(customer: Customer, staff, data: dict) -> Done:
    invoice = _open_invoice(customer, data["invoice"])
    marked = gateway.invoice_mark_uncollectible(invoice_id=invoice.stripe_invoice_id)
    _invoice_refresh(marked, customer)
    return Done(
        f"Invoice {invoice.number or invoice.stripe_invoice_id} marked uncollectible",
        {"invoice": invoice.pk},
    )


class CreditForm(ReasonForm):
    amount = forms.DecimalField(
        label="Credit", min_value=Decimal("0.01"), max_digits=12, decimal_places=3
    )
    currency = forms.CharField(max_length=3, min_length=3, initial="eur")

    def clean(self):
        cleaned = super().clean()
        amount, currency = cleaned.get("amount"), (cleaned.get("currency") or "").lower()
        if amount is not None and currency:
            minor = amount.scaleb(currency_exponent(currency))
            if minor != minor.to_integral_value():
                self.add_error("amount", f"Too many decimals for {currency.upper()}.")
            else:
                cleaned["amount_minor"] = int(minor)
                cleaned["currency"] = currency
        return cleaned


def credit_add(customer: Customer, staff, data: dict) -> Done:
    info = _billing_info(customer)
    last = Entry.objects.filter(customer=customer).order_by("-id").values_list("pk", flat=True)
    added = gateway.customer_credit_add(
        stripe_customer_id=info.stripe_id,
        amount=data["amount_minor"],
        currency=data["currency"],
        description=f"Credit from support: {data['reason'][:200]}",
        request_key=str(last.first() or 0),  # a second credit after any change is a new one
    )
    return Done(
        f"Credit of {money_format(data['amount_minor'], data['currency'])} added to the "
        "Stripe balance",
        {"balance_transaction": added["id"], "ending_balance": added["ending_balance"]},
    )


class CouponForm(ReasonForm):
    coupon = forms.CharField(label="Coupon id", max_length=255, strip=True)


def coupon_apply(customer: Customer, staff, data: dict) -> Done:
    """Redeem a Stripe coupon on the customer's subscription (replacing any it had) and
    put its discount on our current invoice, as Stripe will compute it at the renewal."""
    from billing.discounts import discount_terms, subscription_discount_record

    plan = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
    if plan is None or not plan.is_live or not plan.subscription_id:
        raise ActionRefused("This customer has no paid plan to apply a coupon to.", status=409)
    coupon = gateway.coupon_retrieve(coupon_id=data["coupon"])
    if (coupon.get("applies_to") or {}).get("products"):
        raise errors.BillingError(
            f"Coupon {coupon['id']} is limited to some products; the portal's ledger takes "
            "coupons off the whole invoice only.",
            param="coupon",
        )
    last = Entry.objects.filter(customer=customer).order_by("-id").values_list("pk", flat=True)
    subscription = gateway.subscription_coupon_apply(
        subscription_id=plan.subscription_id,
        coupon_id=coupon["id"],
        request_key=str(last.first() or 0),  # applying it again after any change is new
    )
    recorded = subscription_discount_record(
        customer=customer, subscription=subscription, coupon=coupon
    )
    current = invoicing.current_invoice(customer=customer)
    if current is not None:
        invoicing.invoice_lines_refresh(invoice=current)
    return Done(
        f"Coupon {coupon['id']} applied ({discount_terms(recorded)})",
        {"coupon": coupon["id"], "discount": recorded.stripe_discount_id},
    )


class PlanForm(ReasonForm):
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.filter(is_active=True, amount__isnull=False),
        to_field_name="code",
        empty_label=None,
    )


def plan_change(customer: Customer, staff, data: dict) -> Done:
    plan = data["plan"]
    result = plans.plan_change(
        customer=customer, plan=plan, proration_date=int(timezone.now().timestamp()),
        source="staff",
    )  # fmt: skip
    if not result.applied:  # the customer's bank wants them to confirm the payment first
        return Done(
            f"Switch to {plan.name} waits for the customer to confirm the payment (emailed "
            "with the link); it applies once paid",
            {"plan_code": plan.code, "pay_url": result.pay_url},
        )
    return Done(f"Plan changed to {plan.name}", {"plan_code": plan.code})


def plan_cancel(customer: Customer, staff, data: dict) -> Done:
    plans.plan_cancel_at_period_end(customer=customer, cancel=True, source="staff")
    return Done("Plan set to cancel at the end of the period")


def plan_resume(customer: Customer, staff, data: dict) -> Done:
    plans.plan_cancel_at_period_end(customer=customer, cancel=False, source="staff")
    return Done("Plan resumed: it renews as before")


def suspend(customer: Customer, staff, data: dict) -> Done:
    if customer.suspended_at is not None:
        raise ActionRefused("This account is suspended already.", status=409)
    Customer.objects.filter(pk=customer.pk).update(suspended_at=timezone.now())
    issued = license_refresh(customer=customer)
    return Done("Account suspended", {"jti": str(issued.jti) if issued else None})


def unsuspend(customer: Customer, staff, data: dict) -> Done:
    if customer.suspended_at is None:
        raise ActionRefused("This account is not suspended.", status=409)
    Customer.objects.filter(pk=customer.pk).update(suspended_at=None)
    issued = license_refresh(customer=customer)
    return Done("Suspension lifted", {"jti": str(issued.jti) if issued else None})


class SpendCapForm(ReasonForm):
    feature = forms.CharField(
        required=False, help_text="A priced metered feature; empty: the invoice's total."
    )
    amount = forms.IntegerField(min_value=1, help_text="In minor units (cents).")
    thresholds = forms.CharField(initial="50,80,100", help_text="Percentages, e.g. 50,80,100.")
    mode = forms.ChoiceField(choices=SpendCap.Mode.choices)

    def clean_thresholds(self) -> list[int]:
        try:
            return [int(part) for part in self.cleaned_data["thresholds"].split(",") if part]
        except ValueError:
            raise forms.ValidationError("Whole percentages, separated by commas.") from None


def spend_cap_set(customer: Customer, staff, data: dict) -> Done:
    """The customer's cap, set as the customer would set it on their usage page."""
    from licensing.spend import SpendCapInvalid
    from licensing.spend import spend_cap_set as cap_set

    try:
        cap = cap_set(
            customer=customer, feature=data["feature"] or None, amount=data["amount"],
            thresholds=data["thresholds"], mode=data["mode"],
        )  # fmt: skip
    except SpendCapInvalid as error:
        raise ActionRefused(str(error), status=400) from None
    on = data["feature"] or "the invoice total"
    return Done(
        f"Spend cap on {on} set to {data['amount']} minor units ({cap.get_mode_display()})",
        {"spend_cap": cap.pk},
    )


class EventForm(ReasonForm):
    event = forms.CharField(widget=forms.HiddenInput)


def event_replay(customer: Customer, staff, data: dict) -> Done:
    from .selectors import customer_event_ids

    event_id = data["event"]
    if event_id not in customer_event_ids(customer=customer):
        raise ActionRefused("No stored event about this customer has that id.", status=404)
    processed = stripe_event_replay(event_id=event_id)
    if not processed:
        error = StripeEvent.objects.get(pk=event_id).last_error
        raise errors.BillingError(f"Processing failed again: {error}")
    event_type = StripeEvent.objects.values_list("type", flat=True).get(pk=event_id)
    return Done(f"Webhook {event_type} ({event_id}) processed again", {"event": event_id})


class ClockForm(ReasonForm):
    days = forms.FloatField(min_value=0.01, max_value=400, initial=31)


def clock_advance(customer: Customer, staff, data: dict) -> Done:
    if settings.STRIPE_LIVE_MODE:
        raise ActionRefused("Test clocks exist only in test mode.", status=409)
    advanced = customer_test_clock_advance(customer=customer, days=data["days"])
    moved = datetime.fromtimestamp(advanced.frozen_time, UTC)
    return Done(
        f"Test clock advanced {data['days']:g} days, to {moved:%-d %B %Y %H:%M} UTC "
        f"({advanced.processed} events processed)",
        {"test_clock": advanced.clock_id},
    )


def export(customer: Customer, staff, data: dict) -> Done:
    from .gdpr import personal_data_export

    return Done("Personal data exported", payload=personal_data_export(customer=customer))


class EraseForm(ReasonForm):
    confirm = forms.CharField(label="Type the customer id to confirm")


def erase(customer: Customer, staff, data: dict) -> Done:
    from .gdpr import personal_data_erase

    if data["confirm"].strip() != customer.customer_id:
        raise ActionRefused("Type the customer id exactly to confirm the erasure.", status=400)
    erasure = personal_data_erase(customer=customer, staff=staff)
    if erasure.stripe_customers_deleted:
        stripe_part = "the Stripe customer deleted: nothing was owed"
    elif erasure.stripe_customer_ids:
        stripe_part = "the Stripe customer's details cleared: it still bills or is owed"
    else:
        stripe_part = "no Stripe customer of its own"
    return Done(
        f"Personal data erased (people, names; {stripe_part})",
        {"erasure": erasure.pk, "users": len(erasure.user_ids)},
    )


def view_as(customer: Customer, staff, data: dict) -> Done:
    from .view_as import customer_pages_render

    return Done("Viewed the account as the customer sees it", payload=customer_pages_render(
        customer=customer
    ))  # fmt: skip


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    perform: Callable[[Customer, AbstractBaseUser, dict], Done]
    form: type[forms.Form] = ReasonForm
    # Writes only to our tables: run in one transaction with its audit entry.
    local: bool = False
    needs_billing: bool = True
    # Reading is enough (the export, view as customer): read-only staff may do it.
    permission: str = permissions.ACT
    danger: bool = False
    # The form field Stripe's refusal of this action can be about (shown next to it).
    error_field: str | None = None


ACTIONS: dict[str, Action] = {
    action.name: action
    for action in [
        Action("resync", "Resync from Stripe", resync),
        Action("license_reissue", "Reissue the license", license_reissue, local=True,
               needs_billing=False),
        Action("license_resend", "Email the license again", license_resend, local=True,
               needs_billing=False),
        Action("trial_extend", "Extend the trial", trial_extend, TrialForm, local=True,
               needs_billing=False),
        Action("usage_sync", "Sync usage now", usage_sync),
        Action("invoice_retry", "Retry the payment", invoice_retry, InvoiceRetryForm),
        Action("invoice_void", "Void the invoice", invoice_void, InvoiceForm, danger=True),
        Action("invoice_uncollectible", "Mark uncollectible", invoice_uncollectible,
               InvoiceForm, danger=True),
        Action("credit_add", "Add a credit", credit_add, CreditForm),
        Action("coupon_apply", "Apply a coupon", coupon_apply, CouponForm,
               error_field="coupon"),
        Action("plan_change", "Change plan", plan_change, PlanForm),
        Action("plan_cancel", "Cancel at period end", plan_cancel, danger=True),
        Action("plan_resume", "Resume", plan_resume),
        Action("suspend", "Suspend", suspend, local=True, needs_billing=False, danger=True),
        Action("unsuspend", "Lift the suspension", unsuspend, local=True, needs_billing=False),
        Action("spend_cap_set", "Set the spend cap", spend_cap_set, SpendCapForm, local=True,
               needs_billing=False),
        Action("event_replay", "Replay", event_replay, EventForm),
        Action("clock_advance", "Advance the test clock", clock_advance, ClockForm),
        Action("export", "Export personal data", export, needs_billing=False),
        Action("erase", "Erase personal data", erase, EraseForm, needs_billing=False,
               danger=True),
        Action("view_as", "View as customer", view_as, local=True, needs_billing=False,
               permission=permissions.VIEW),
    ]
}  # fmt: skip


def action_refusal(*, action: Action, customer: Customer, staff: AbstractBaseUser) -> str | None:
    """Why this staff member may not take this action on this account now, if not."""
    if not staff.has_perm(action.permission) or not permissions.can_view(staff):
        return "You may look at this account but not act on it."
    if Erasure.objects.filter(customer_id=customer.pk).exists():
        return "This account's personal data has been erased: nothing more can be done to it."
    if customer.memberships.filter(user__is_staff=True).exists():
        return "This is a staff member's account: support actions are not taken on it."
    if action.needs_billing and not settings.BILLING_ENABLED:
        return "Billing is not enabled on this portal."
    return None


def _sentence(text: str) -> str:
    return text if len(text) <= SENTENCE_MAX else text[: SENTENCE_MAX - 1] + "…"


def action_run(
    *, action: Action, customer: Customer, staff: AbstractBaseUser, data: dict
) -> Outcome:
    """Run a validated action and record it: one entry, succeeded or failed."""
    refusal = action_refusal(action=action, customer=customer, staff=staff)
    if refusal:
        raise ActionRefused(refusal)
    reason = data["reason"]
    before = state_of(customer.pk)
    failure: errors.BillingError | None = None
    done: Done | None = None
    entry: Entry | None = None

    def record(after: dict) -> Entry:
        fields = {k: v for k, v in data.items() if k not in {"reason", "confirm", "amount"}}
        succeeded = failure is None
        if succeeded:
            sentence = f"{done.summary} by {staff.email}: {reason}"
        else:
            sentence = (
                f"{action.label} failed ({failure.user_message}), asked by {staff.email}: {reason}"
            )
        return entry_record(
            customer_id=customer.pk,
            kind=f"support_{action.name}",
            source=Source.STAFF,
            actor=staff,
            sentence=_sentence(sentence),
            data={
                "action": action.name,
                "reason": reason,
                "fields": {k: _plain(v) for k, v in fields.items()},
                "outcome": "succeeded" if succeeded else "failed",
                "error": None if succeeded else failure.user_message,
                "before": before,
                "after": after,
                "changed": changed_keys(before, after),
                "stripe_request_ids": request_ids,
                **({"details": done.details} if done else {}),
            },
        )

    with gateway.request_ids_collected() as request_ids:
        try:
            if action.local:
                with transaction.atomic():
                    customer = Customer.objects.select_for_update().get(pk=customer.pk)
                    done = action.perform(customer, staff, data)
                    entry = record(state_of(customer.pk))
            else:
                done = action.perform(customer, staff, data)
        except ActionRefused:
            raise
        except errors.BillingError as error:
            logger.warning("Support action %s on %s failed: %r", action.name, customer.pk, error)
            failure = error
        except Exception:
            # A defect, not Stripe: Stripe may have been called already, so the attempt is
            # still recorded (as failed) before staff see the message.
            logger.exception("Support action %s on %s broke", action.name, customer.pk)
            failure = errors.BillingError("An internal error stopped it; it has been logged.")
            entry = None
    if entry is None:
        entry = record(state_of(customer.pk))
    if failure is not None:
        return Outcome(
            entry,
            False,
            f"{action.label} failed: {failure.user_message}",
            error_param=failure.param,
        )
    changed = entry.data["changed"]
    message = f"{done.summary}." + (f" Changed: {', '.join(changed)}." if changed else "")
    return Outcome(entry, True, message, done.payload)


def _plain(value):
    """A form's cleaned value as JSON for the entry: dates as ISO text, a plan by code."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Plan):
        return value.code
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value
