"""View as customer: the customer's billing, cards and invoices pages rendered for a staff
member from our database, read-only. Every form is emptied of its target and every
control disabled, so no button on it can change anything; links lead nowhere."""

import re

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Customer
from audit.models import Entry
from billing import invoicing, mirror
from billing.models import PaymentMethod
from licensing.models import CustomerPlan
from licensing.selectors import customer_feature_use

CONTROL = re.compile(r"<(button|input|select|textarea)\b", re.IGNORECASE)
FORM = re.compile(r"<form\b[^>]*>", re.IGNORECASE)
LINK = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
BODY = re.compile(r"<main>", re.IGNORECASE)


def read_only(html: str) -> str:
    html = FORM.sub('<form data-read-only onsubmit="return false">', html)
    html = CONTROL.sub(lambda m: f"<{m.group(1)} disabled", html)
    return LINK.sub('<a data-read-only aria-disabled="true">', html)


def customer_pages_render(*, customer: Customer) -> str:
    now = timezone.now()
    plan = CustomerPlan.objects.select_related("plan").filter(customer=customer).first()
    invoice = invoicing.current_invoice(customer=customer)
    lines = invoicing.lines_in_order(invoice.lines.all()) if invoice else []
    total = sum(line.amount for line in lines)
    context = {
        "billing_enabled": settings.BILLING_ENABLED,
        "customer": customer,
        "cards": mirror.cards_for_display(
            list(PaymentMethod.objects.for_customer(customer).order_by("order"))
        ),
        "current_plan": plan,
        "timeline": Entry.objects.filter(customer=customer)[:50],
        "invoice": invoice,
        "lines": lines,
        "running_total": total,
        "next_charge": total,
        "feature_use": customer_feature_use(customer=customer, now=now),
    }
    overview = render_to_string("billing/overview.html", context)
    invoices = render_to_string(
        "billing/invoices.html",
        {**context, "invoices": list(invoicing.invoices_with_totals(customer=customer))},
    )
    cards = render_to_string(
        "billing/payment_methods.html", {**context, "last_card_locked": False, "attempt": ""}
    )
    banner = (
        '<main><p class="message warning" id="view-as-banner">Viewing '
        f"{escape(customer.customer_id)} as its members see it: read-only, recorded in "
        "the account's timeline.</p>"
    )
    page = overview.replace("</main>", _main_of(cards) + _main_of(invoices) + "</main>", 1)
    return BODY.sub(banner, read_only(page), count=1)


def _main_of(html: str) -> str:
    start, end = html.find("<main>"), html.rfind("</main>")
    return html[start + len("<main>") : end] if start >= 0 and end > start else ""
