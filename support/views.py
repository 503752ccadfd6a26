"""The support console's pages, inside the admin: search, one page per customer, and one
POST view per action. Every view needs a staff login (the admin's) and the console's view
permission; actions need theirs too (`actions.action_refusal`)."""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Customer
from billing.models import PaymentMethod

from . import permissions
from .actions import ACTIONS, ActionRefused, action_refusal, action_run
from .selectors import customers_search, support_page


def _viewer(view):
    def wrapped(request, *args, **kwargs):
        if not permissions.can_view(request.user):
            raise PermissionDenied("The support console needs the Support group's permission.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return admin.site.admin_view(wrapped)


def _context(request, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


@require_GET
def search(request):
    """Find a customer by a member's email, cust_…, cus_… or an invoice number; one match
    goes straight to its page."""
    query = request.GET.get("q", "").strip()
    found = customers_search(query=query) if query else []
    if len(found) == 1:
        return redirect("support:customer", customer_id=found[0].pk)
    return TemplateResponse(
        request,
        "admin/support/search.html",
        _context(request, title="Find a customer", query=query, found=found),
    )


def _page_response(request, customer_id: str, *, forms: dict | None = None, status: int = 200):
    page = support_page(customer_id=customer_id)
    if page is None:
        raise Http404("No such customer.")
    refusals = {
        name: action_refusal(action=action, customer=page.customer, staff=request.user)
        for name, action in ACTIONS.items()
    }
    return TemplateResponse(
        request,
        "admin/support/customer.html",
        _context(
            request,
            title=f"Support: {page.customer.customer_id}",
            page=page,
            can_act=permissions.can_act(request.user),
            refusals=refusals,
            forms=forms or {},
            actions=ACTIONS,
        ),
        status=status,
    )


@require_GET
def customer(request, customer_id: str):
    """Everything about one customer, from our database (no Stripe call)."""
    return _page_response(request, customer_id)


@require_POST
def action(request, customer_id: str, name: str):
    chosen = ACTIONS.get(name)
    if chosen is None:
        raise Http404("No such action.")
    account = Customer.objects.filter(pk=customer_id).first()
    if account is None:
        raise Http404("No such customer.")
    refusal = action_refusal(action=chosen, customer=account, staff=request.user)
    if refusal:
        messages.error(request, refusal)
        return _page_response(request, customer_id, status=403)
    form = chosen.form(request.POST)
    if name == "invoice_retry":
        form.fields["card"].help_text = ", ".join(
            PaymentMethod.objects.for_customer(account).values_list("stripe_id", flat=True)
        )
    if not form.is_valid():
        messages.error(request, f"{chosen.label}: {_errors_text(form)}")
        return _page_response(request, customer_id, forms={name: form}, status=400)
    try:
        outcome = action_run(
            action=chosen, customer=account, staff=request.user, data=form.cleaned_data
        )
    except ActionRefused as refused:
        messages.error(request, f"{chosen.label}: {refused.message}")
        return _page_response(request, customer_id, forms={name: form}, status=refused.status)
    if not outcome.succeeded and chosen.error_field and outcome.error_param == chosen.error_field:
        # Stripe refused what was typed (an unknown coupon): said next to the field.
        form.add_error(chosen.error_field, outcome.message)
        messages.error(request, outcome.message)
        return _page_response(request, customer_id, forms={name: form}, status=400)
    if not outcome.succeeded:
        messages.error(request, outcome.message)
        return redirect("support:customer", customer_id=customer_id)
    if name == "export":
        response = HttpResponse(
            json.dumps(outcome.payload, indent=2, default=str),
            content_type="application/json",
        )
        response["Content-Disposition"] = f'attachment; filename="{customer_id}-personal-data.json"'
        return response
    if name == "view_as":
        response = HttpResponse(outcome.payload)
        # Nothing on it may be framed or cached as the customer's own page.
        response["Cache-Control"] = "no-store"
        return response
    messages.success(request, outcome.message)
    return redirect(reverse("support:customer", kwargs={"customer_id": customer_id}))


def _errors_text(form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


search = _viewer(search)
customer = _viewer(customer)
action = _viewer(action)
