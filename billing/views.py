"""Billing pages. With no STRIPE_SECRET_KEY, billing is disabled: the overview says so and
every billing action answers 501 Not Implemented, while the rest of the portal works.

Every view works on the current account (`accounts.selectors.current_membership`: the one
picked in the header, for a person in several); a card id in a URL is looked up within
that account only, so another customer's card is a 404."""

import dataclasses
import uuid
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.models import WebhookEndpoint

from accounts.decorators import email_verified_required
from accounts.models import Customer, Membership
from accounts.selectors import current_membership, request_memberships
from audit.models import Entry
from billing_portal.money import money_format
from licensing import spend
from licensing.models import CustomerPlan, Plan, PlanFeature
from licensing.selectors import customer_feature_use

from . import cards, errors, events, gateway, invoicing, mirror, profiles
from . import plans as plan_services  # the module; `plans` is the page below
from .forms import BillingDetailsForm, SpendCapForm
from .models import BillingInfo, Invoice, PaymentMethod, StripeEvent

TIMELINE_LENGTH = 20
PRORATION_SALT = "billing.plan_change.proration"


def billing_disabled_response(request):
    return render(request, "billing/disabled.html", status=501)


def billing_required(view):
    """Answer 501 with an explanation when billing is not enabled on this portal."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.BILLING_ENABLED:
            return billing_disabled_response(request)
        return view(request, *args, **kwargs)

    return wrapper


BILLING_ROLES = {Membership.Role.OWNER, Membership.Role.BILLING}


def customer_required(view):
    """Signed in as the account's owner or billing contact (request.customer is set).
    Plain members may see /billing/ but not manage cards, details or the plan."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        membership = current_membership(request)
        if membership is None:
            raise Http404("No customer account")
        if membership.role not in BILLING_ROLES:
            raise PermissionDenied("Only the account's owner or billing contact manages billing.")
        request.customer = membership.customer
        return view(request, *args, **kwargs)

    return wrapper


def profile_manager_required(view):
    """Cards and billing details of a shared billing profile are managed by the owners of
    the account it belongs to only; for the sharing account they are read-only (403)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        payer = profiles.customer_payer(customer=request.customer)
        if payer.pk != request.customer.pk and not profiles.is_owner(
            user=request.user, customer=payer
        ):
            raise PermissionDenied(
                f"These cards belong to {payer.display_name}'s billing profile: its owners "
                "manage them."
            )
        return view(request, *args, **kwargs)

    return wrapper


def _cards(customer) -> list[mirror.CardView]:
    return mirror.cards_for_display(
        list(PaymentMethod.objects.for_customer(customer).order_by("order", "created_at"))
    )


def _card_or_404(request, stripe_id: str) -> PaymentMethod:
    return get_object_or_404(
        PaymentMethod.objects.for_customer(request.customer).select_related("billing_info"),
        stripe_id=stripe_id,
    )


def _attempt(request) -> str:
    """The id of the page the form was on: a double click sends the same one, so the
    same Checkout Session comes back instead of a second."""
    attempt = request.POST.get("attempt", "")
    try:
        return uuid.UUID(hex=attempt).hex
    except ValueError:
        return uuid.uuid4().hex


def _billing_error(request, error: errors.BillingError):
    messages.error(request, error.user_message)
    return redirect("billing:payment_methods")


@login_required
def overview(request):
    membership = current_membership(request)
    customer = membership.customer if membership else None
    context = {"customer": customer, "cards": [], "timeline": [], "current_plan": None}
    if settings.BILLING_ENABLED and customer is not None:
        context["cards"] = _cards(customer)
        context["current_plan"] = (
            CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
        )
        context["timeline"] = Entry.objects.filter(customer=customer)[:TIMELINE_LENGTH]
        if membership.role in BILLING_ROLES:
            context.update(_current_invoice_context(customer, context["current_plan"]))
    return render(request, "billing/overview.html", context)


def _current_invoice_context(customer, current_plan: CustomerPlan | None) -> dict:
    """The current invoice with its lines recomputed from the ledgers now (no Stripe call),
    and each metered feature's use against its plan."""
    now = timezone.now()
    # Ensured, not only read: a subscriber from before invoices existed gets theirs now.
    invoice = invoicing.current_invoice_ensure(customer=customer, now=now)
    lines = invoicing.lines_in_order(invoice.lines.all()) if invoice else []
    total = sum(line.amount for line in lines)
    plan_line = next((line for line in lines if line.kind == "plan"), None)
    cancelling = bool(current_plan and current_plan.cancel_at_period_end)
    return {
        "invoice": invoice,
        "lines": lines,
        "running_total": total,
        # Ending at the period's close: Stripe bills the cycle's use without the next price.
        "next_charge": total - (plan_line.amount if plan_line and cancelling else 0),
        "feature_use": customer_feature_use(customer=customer, now=now),
    }


@billing_required
@customer_required
def payment_methods(request):
    shown = _cards(request.customer)
    billing_info = BillingInfo.objects.for_customer(request.customer)
    # Asked whatever the number of cards, so the page's queries stay the same.
    paid_plan = billing_info is not None and cards.billing_info_has_live_plan(billing_info)
    last_card_locked = paid_plan and len(shown) == 1
    payer = profiles.customer_payer(customer=request.customer)
    shared = payer.pk != request.customer.pk
    return render(
        request,
        "billing/payment_methods.html",
        {
            "cards": shown,
            "last_card_locked": last_card_locked,
            "attempt": uuid.uuid4().hex,
            "payer": payer if shared else None,
            # Only for a sharing account's non-owner: other renderings (support's view as
            # customer) show the controls as the customer has them.
            "managed_elsewhere": shared
            and not profiles.is_owner(user=request.user, customer=payer),
        },
    )


@require_POST
@billing_required
@customer_required
@profile_manager_required
@email_verified_required
def payment_method_add(request):
    """Send the customer to Stripe's hosted Checkout (setup mode) to enter a card."""
    try:
        billing_info = cards.billing_info_ensure(
            customer=request.customer, email=request.user.email
        )
        _session_id, url = gateway.checkout_setup_session_create(
            stripe_customer_id=billing_info.stripe_id,
            customer_id=request.customer.customer_id,
            success_url=settings.PORTAL_BASE_URL
            + reverse("billing:payment_method_added")
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=settings.PORTAL_BASE_URL + reverse("billing:payment_method_cancelled"),
            request_key=_attempt(request),
        )
    except errors.BillingError as error:
        return _billing_error(request, error)
    return redirect(url)


@billing_required
@customer_required
def payment_method_added(request):
    """Checkout's return page. The webhook may have recorded the card already; either way
    the same service records it once."""
    session_id = request.GET.get("session_id", "")
    billing_info = BillingInfo.objects.for_customer(request.customer)
    if not session_id.startswith("cs_") or billing_info is None:
        raise Http404("No such session")
    try:
        card, on_file = cards.checkout_setup_complete(
            session_id=session_id, billing_info=billing_info
        )
    except LookupError:
        raise Http404("No such session") from None
    except errors.BillingError as error:
        return _billing_error(request, error)
    if card is None:
        messages.info(request, "The card is still being confirmed; it will appear shortly.")
    elif on_file:
        messages.info(request, "That card is already on file: it is listed once, where it was.")
    else:
        messages.success(request, "Your card was added.")
    return redirect("billing:payment_methods")


@billing_required
@customer_required
def payment_method_cancelled(request):
    messages.info(request, "No card was added.")
    return redirect("billing:payment_methods")


@require_POST
@billing_required
@customer_required
@profile_manager_required
def payment_method_move(request, stripe_id: str, offset: int):
    card = _card_or_404(request, stripe_id)
    try:
        cards.payment_method_move(card=card, offset=offset)
    except errors.BillingError as error:
        return _billing_error(request, error)
    return redirect("billing:payment_methods")


@require_POST
@billing_required
@customer_required
@profile_manager_required
def payment_method_make_primary(request, stripe_id: str):
    card = _card_or_404(request, stripe_id)
    try:
        cards.payment_method_make_primary(card=card)
    except errors.BillingError as error:
        return _billing_error(request, error)
    messages.success(request, "Primary card changed. It is charged first from now on.")
    return redirect("billing:payment_methods")


@require_POST
@billing_required
@customer_required
@profile_manager_required
@email_verified_required
def payment_method_remove(request, stripe_id: str):
    """The Remove button asks once more, with what removing this card changes; the form
    of that page (confirm=yes) removes it."""
    card = _card_or_404(request, stripe_id)
    try:
        if request.POST.get("confirm") != "yes":
            cards.payment_method_removal_check(card=card)
            return _remove_confirm(request, card)
        cards.payment_method_remove(card=card)
    except errors.BillingError as error:
        return _billing_error(request, error)
    messages.success(request, "The card was removed.")
    return redirect("billing:payment_methods")


def _remove_confirm(request, card: PaymentMethod):
    shown = _cards(request.customer)
    [this] = [view for view in shown if view.stripe_id == card.stripe_id]
    others = [view for view in shown if view.stripe_id != card.stripe_id]
    name = f"{this.brand.title()} ending {this.last4}"
    consequences = [f"{name} is detached from your account at our payment provider."]
    if not others:
        consequences.append("You will have no card on file.")
    elif this.order == 0:
        following = others[0]
        consequences.append(
            f"{following.brand.title()} ending {following.last4} becomes your primary card: "
            "payments due are charged to it first."
        )
    else:
        consequences.append("Your primary card stays as it is.")
    return render(
        request,
        "billing/confirm.html",
        {
            "title": f"Remove {name}?",
            "consequences": consequences,
            "action": reverse("billing:payment_method_remove", args=[card.stripe_id]),
            "confirm_label": "Remove the card",
            "back_url": reverse("billing:payment_methods"),
            "back_label": "Keep it",
        },
    )


@billing_required
@customer_required
@profile_manager_required
@email_verified_required
def billing_details(request):
    """Read live from Stripe and written to Stripe: we keep none of it."""
    billing_info = BillingInfo.objects.for_customer(request.customer)
    if request.method == "POST":
        form = BillingDetailsForm(request.POST)
        if form.is_valid():
            try:
                cards.billing_details_update(
                    customer=request.customer,
                    email=request.user.email,
                    details=form.details(),
                    request_key=form.cleaned_data["attempt"],
                )
            except errors.GatewayUnavailable as error:
                form.add_error(None, error.user_message)
            except errors.BillingError as error:
                form.add_stripe_error(error.param, error.user_message)
            else:
                messages.success(request, "Billing details saved.")
                return redirect("billing:details")
    else:
        initial = {"email": request.user.email}
        if billing_info is not None:
            try:
                details = gateway.customer_billing_details(
                    stripe_customer_id=billing_info.stripe_id
                )
            except errors.BillingError as error:
                messages.error(request, error.user_message)
                return redirect("billing:overview")
            initial = dataclasses.asdict(details)
        form = BillingDetailsForm(initial={**initial, "attempt": uuid.uuid4().hex})
    return render(request, "billing/details.html", {"form": form})


@billing_required
@customer_required
def billing_profile(request):
    """Which billing profile this account pays with; an owner of several accounts makes
    it pay with another's, or gives it its own again."""
    payer = profiles.customer_payer(customer=request.customer)
    owned = [
        membership.customer
        for membership in request_memberships(request)
        if membership.role == Membership.Role.OWNER
        and membership.customer_id != request.customer.pk
    ]
    return render(
        request,
        "billing/profile.html",
        {
            "customer": request.customer,
            "payer": payer,
            "shared": payer.pk != request.customer.pk,
            "is_owner": profiles.is_owner(user=request.user, customer=request.customer),
            "owned": owned,
        },
    )


@require_POST
@billing_required
@customer_required
@email_verified_required
def billing_profile_share(request):
    """Pay with the billing profile of another account the person owns (403 otherwise)."""
    payer = Customer.objects.filter(pk=request.POST.get("payer", "")).first()
    if payer is None:
        raise PermissionDenied("You are not an owner of that account.")
    try:
        profiles.billing_profile_share(customer=request.customer, payer=payer, actor=request.user)
    except profiles.NotAnOwner:
        raise PermissionDenied("Only an owner of both accounts shares a billing profile.") from None
    except errors.BillingError as error:
        messages.error(request, error.user_message)
        return redirect("billing:profile")
    messages.success(request, f"This account now pays with {payer.display_name}'s billing profile.")
    return redirect("billing:profile")


@require_POST
@billing_required
@customer_required
@email_verified_required
def billing_profile_detach(request):
    try:
        profiles.billing_profile_detach(customer=request.customer, actor=request.user)
    except profiles.NotAnOwner:
        raise PermissionDenied("Only the account's owners change its billing profile.") from None
    except errors.BillingError as error:
        messages.error(request, error.user_message)
        return redirect("billing:profile")
    messages.success(request, "This account has its own billing profile again: add a card to it.")
    return redirect("billing:profile")


# --- Plans ------------------------------------------------------------------------------------


def _sold_plans():
    return Plan.objects.filter(is_active=True, amount__isnull=False).prefetch_related(
        "plan_features__feature"
    )


def _sold_plan_or_404(code: str) -> Plan:
    return get_object_or_404(Plan, code=code, is_active=True, amount__isnull=False)


def _plans_error(request, error: errors.BillingError):
    messages.error(request, error.user_message)
    if isinstance(error, errors.CardNeeded):
        return redirect("billing:payment_methods")
    return redirect("billing:plans")


@billing_required
@customer_required
def plans(request):
    current = CustomerPlan.objects.select_related("plan").filter(customer=request.customer)
    current = current.first()
    return render(
        request,
        "billing/plans.html",
        {
            "customer": request.customer,
            "plans": _sold_plans(),
            "current": current if current and current.is_live else None,
            "ended": current if current and not current.is_live else None,
            "attempt": uuid.uuid4().hex,
            "pending": plan_services.pending_plan_change(customer=request.customer),
        },
    )


@require_POST
@billing_required
@customer_required
@email_verified_required
def plan_upgrade(request, code: str):
    plan = _sold_plan_or_404(code)
    try:
        url = plan_services.plan_upgrade_start(
            customer=request.customer,
            email=request.user.email,
            plan=plan,
            success_url=settings.PORTAL_BASE_URL
            + reverse("billing:plan_activated")
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=settings.PORTAL_BASE_URL + reverse("billing:plans"),
        )
    except errors.BillingError as error:
        return _plans_error(request, error)
    return redirect(url)


@billing_required
@customer_required
def plan_activated(request):
    session_id = request.GET.get("session_id", "")
    if not session_id.startswith("cs_"):
        raise Http404("No such session")
    try:
        plan_services.plan_upgrade_complete(customer=request.customer, session_id=session_id)
    except LookupError:
        raise Http404("No such session") from None
    except errors.BillingError as error:
        return _plans_error(request, error)
    current = CustomerPlan.objects.select_related("plan").filter(customer=request.customer)
    current = current.first()
    if current and current.status == CustomerPlan.Status.TRIALING:
        messages.success(
            request,
            f"Welcome to {current.plan.name}! Your trial continues; the first payment is on "
            f"{current.current_period_end:%-d %B %Y}.",
        )
    elif current and current.is_live:
        messages.success(request, f"Welcome to {current.plan.name}! Your plan is active.")
    else:
        messages.info(request, "Your payment is being confirmed; your plan will show shortly.")
    return redirect("billing:plans")


@billing_required
@customer_required
@email_verified_required
def plan_change(request, code: str):
    """GET: what switching now costs, from Stripe's preview. POST: switch, at the moment
    the preview priced, so the invoice matches what was shown."""
    plan = _sold_plan_or_404(code)
    if request.method == "POST":
        try:
            proration_date = signing.loads(
                request.POST.get("proration", ""), salt=PRORATION_SALT, max_age=3600
            )
            result = plan_services.plan_change(
                customer=request.customer, plan=plan, proration_date=proration_date
            )
        except signing.BadSignature:
            messages.error(request, "That preview has expired; please check the new price again.")
            return redirect("billing:plan_change", code=plan.code)
        except errors.PlanChangeDeclined as error:
            # Back to the switch page, with why: the customer can change cards and retry.
            messages.error(request, error.user_message)
            return redirect("billing:plan_change", code=plan.code)
        except errors.BillingError as error:
            return _plans_error(request, error)
        if not result.applied:
            messages.info(request, _pending_message(plan, result))
            return redirect(result.pay_url or "billing:plans")
        messages.success(request, f"You are now on {plan.name}.")
        return redirect("billing:plans")

    try:
        preview = plan_services.plan_change_preview(customer=request.customer, plan=plan)
    except errors.BillingError as error:
        return _plans_error(request, error)
    return render(
        request,
        "billing/plan_change.html",
        {
            "plan": plan,
            "current": request.customer.plan,
            "preview": preview,
            "proration": signing.dumps(preview.proration_date, salt=PRORATION_SALT),
            "pending": plan_services.pending_plan_change(customer=request.customer),
        },
    )


def _pending_message(plan: Plan, result: plan_services.PlanChangeResult) -> str:
    amount = money_format(result.amount_due, result.currency)
    return (
        f"Your bank asks you to confirm the payment of {amount}. The switch to {plan.name} "
        "applies once it is paid; until then your plan stays as it is."
    )


CANCEL_MESSAGES = {
    True: "Your plan will end at the close of the period you paid for.",
    False: "Your plan continues: it will renew as before.",
}


@require_POST
@billing_required
@customer_required
def plan_cancel_at_period_end(request, cancel: bool):
    """Cancel at the end of the paid period (plan/cancel/), or resume before (plan/resume/).
    Cancelling asks once more, with when the plan ends; that page's form (confirm=yes)
    cancels."""
    try:
        if cancel and request.POST.get("confirm") != "yes":
            return _cancel_confirm(request, plan_services.plan_live(customer=request.customer))
        plan_services.plan_cancel_at_period_end(customer=request.customer, cancel=cancel)
    except errors.BillingError as error:
        return _plans_error(request, error)
    messages.success(request, CANCEL_MESSAGES[cancel])
    return redirect("billing:plans")


def _cancel_confirm(request, current: CustomerPlan):
    name, ends = current.plan.name, current.current_period_end
    when = f"on {ends:%-d %B %Y}" if ends else "at the end of the current period"
    if current.status == CustomerPlan.Status.TRIALING:
        consequences = [
            f"Your {name} plan ends with your trial, {when}, and its paid features stop then.",
            "Nothing is charged: the first payment, due when the trial ends, is not taken.",
        ]
    else:
        consequences = [
            f"Your {name} plan ends {when}, at the close of the period you paid for, and its "
            "paid features stop then.",
            "It does not renew: its price is not charged again. What you use until then "
            "is billed at the period's close.",
        ]
    consequences.append("You can resume the plan until then.")
    return render(
        request,
        "billing/confirm.html",
        {
            "title": f"Cancel your {name} plan?",
            "consequences": consequences,
            "action": reverse("billing:plan_cancel"),
            "confirm_label": "Cancel the plan",
            "back_url": reverse("billing:plans"),
            "back_label": f"Keep {name}",
        },
    )


# --- Invoices and usage -----------------------------------------------------------------------


@billing_required
@customer_required
def usage(request):
    """This cycle's use per feature, day by day, the resources held with their days, and
    the customer's spend caps (set here: a POST of the cap form)."""
    customer = request.customer
    paid = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
    currency = paid.plan.currency if paid and paid.plan.currency else ""
    features = [
        (pf.feature.key, pf.feature.name)
        for pf in PlanFeature.objects.select_related("feature").filter(
            plan=paid.plan if paid else None, unit_amount__isnull=False,
            feature__kind="metered", feature__held=False,
        )
    ] if paid else []  # fmt: skip
    form = SpendCapForm(features=features, currency=currency or "eur")
    status = 200
    if request.method == "POST":
        form = SpendCapForm(request.POST, features=features, currency=currency or "eur")
        if not currency:
            form.add_error(None, "Spend caps apply to a paid plan; choose one first.")
        if form.is_valid():
            data = form.cleaned_data
            spend.spend_cap_set(
                customer=customer, feature=data["scope"] or None, amount=data["amount"],
                thresholds=data["thresholds"], mode=data["mode"],
            )  # fmt: skip
            messages.success(request, "Spend cap saved; it applies now.")
            return redirect("billing:usage")
        status = 400
    invoice = invoicing.current_invoice_ensure(customer=customer)
    return render(
        request,
        "billing/usage.html",
        {
            "invoice": invoice,
            "feature_use": customer_feature_use(customer=customer, now=timezone.now()),
            "usage_days": invoicing.usage_by_day(invoice=invoice) if invoice else [],
            "holdings": invoicing.holdings_in_cycle(invoice=invoice) if invoice else [],
            "caps": spend.spend_caps_of(customer=customer),
            "cap_form": form,
            "cap_currency": currency,
        },
        status=status,
    )


@billing_required
@customer_required
@require_POST
def spend_cap_remove(request, cap_id: int):
    if not spend.spend_cap_remove(customer=request.customer, cap_id=cap_id):
        raise Http404("No such spend cap")
    messages.success(request, "Spend cap removed.")
    return redirect("billing:usage")


@billing_required
@customer_required
def invoices(request):
    """Every invoice, the one in progress first; figures from our database only."""
    invoicing.current_invoice_ensure(customer=request.customer)
    return render(
        request,
        "billing/invoices.html",
        {"invoices": list(invoicing.invoices_with_totals(customer=request.customer))},
    )


@billing_required
@customer_required
def invoice_detail(request, invoice_id: int):
    """One invoice's lines, so the customer can see why they were charged what they were."""
    invoice = get_object_or_404(
        Invoice.objects.for_customer(request.customer).select_related("plan"), pk=invoice_id
    )
    lines = invoicing.invoice_lines_refresh(invoice=invoice)
    return render(
        request,
        "billing/invoice_detail.html",
        {"invoice": invoice, "lines": lines, "lines_total": sum(line.amount for line in lines)},
    )


# --- Stripe's webhooks ------------------------------------------------------------------------


@csrf_exempt
@require_POST
def stripe_webhook(request, uuid):
    """Verify the signature, store the event, answer 200: processing is a task queued on
    the commit, so Stripe never waits on it and no transaction spans anything slow. A
    forged, tampered or stale delivery is a 400 and stores nothing; a replay is a 200 that
    changes nothing."""
    signature = request.headers.get("Stripe-Signature")
    if not signature:
        return HttpResponseBadRequest("No signature.")
    endpoint = get_object_or_404(WebhookEndpoint, djstripe_uuid=uuid)
    try:
        payload = gateway.webhook_payload_verify(
            body=request.body,
            signature=signature,
            secret=endpoint.secret,
            tolerance=endpoint.djstripe_tolerance,
        )
    except errors.WebhookSignatureInvalid:
        return HttpResponseBadRequest("Bad signature.")
    with transaction.atomic():
        event, _new = events.stripe_event_record(payload=payload, source=StripeEvent.Source.WEBHOOK)
    return HttpResponse(event.pk)
