"""The emulator's stand-ins for Stripe's hosted pages: Checkout and the invoice page.

``GET /checkout/<session>`` shows the session and the test cards; ``POST`` with
``payment_method=<test token>`` completes it and redirects (303) to ``success_url``; a
decline re-renders the page with the reason. ``/invoice/<invoice>`` (a finalized invoice's
``hosted_invoice_url``) shows its lines and totals and pays an open invoice the same way;
a payment waiting for 3-D Secure is completed (or failed) there with ``authenticate=complete``
(``fail``);
``/invoice/<invoice>/pdf`` is its ``invoice_pdf``. Plainly labelled, no Stripe branding.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from .cards import PAGE_TOKENS
from .context import Context
from .errors import StripeError
from .pdf import invoice_pdf, money
from .resources.checkout import SESSION, CheckoutDeclined, checkout_session_complete
from .resources.invoicing import (
    PaymentFailure,
    invoice_authenticate,
    invoice_collect,
    invoice_pending_intent,
)
from .store import Obj

Page = tuple[int, dict[str, str], bytes]

# An uncollectible invoice can still be paid, as at Stripe.
PAYABLE = ("open", "uncollectible")

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
.banner{background:#fff3c4;border:1px solid #e0c060;padding:.5rem .75rem;border-radius:4px}
.error{background:#fde2e2;border:1px solid #d66;padding:.5rem .75rem;border-radius:4px}
label{display:block;margin:.4rem 0} button{margin-top:1rem;padding:.5rem 1.2rem}
table{border-collapse:collapse;width:100%}
td,th{padding:.3rem;border-bottom:1px solid #ddd;text-align:left} .n{text-align:right}
"""


def checkout_page(ctx: Context, method: str, path: str, body: str) -> Page:
    session = ctx.store.get(path.removeprefix("/checkout/").strip("/"))
    if session is None or session.get("object") != SESSION:
        return _page(404, "Checkout session not found", "<p>There is no such checkout session.</p>")
    if session["status"] == "complete":
        return _page(200, "Checkout complete", "<p>This checkout session is complete.</p>")
    if session["status"] != "open":
        return _page(410, "Checkout session expired", "<p>This checkout session has expired.</p>")
    if method != "POST":
        return _checkout_form(session, error=None)
    ctx.customer_present = True  # a card asking for authentication gets it here
    try:
        checkout_session_complete(ctx, session, _token(body))
    except CheckoutDeclined as declined:
        return _checkout_form(session, error=declined.message, status=402)
    except StripeError as error:  # anything else Stripe would refuse: shown, nothing kept
        ctx.store.rollback()
        ctx.events.clear()
        return _checkout_form(session, error=error.message, status=error.status)
    # Without a success_url, Stripe shows its own confirmation; here that is the page itself.
    target = (session["success_url"] or f"{ctx.base_url}/checkout/{session['id']}").replace(
        "{CHECKOUT_SESSION_ID}", session["id"]
    )
    return 303, {"Location": target, "Content-Type": "text/plain"}, b"See Other"


def invoice_page(ctx: Context, method: str, path: str, body: str) -> Page:
    invoice_id, _, document = path.removeprefix("/invoice/").strip("/").partition("/")
    invoice = ctx.store.get(invoice_id)
    # Like Stripe's, the hosted page and the PDF exist once an invoice is finalized.
    if (
        invoice is None
        or invoice.get("object") != "invoice"
        or invoice.get("deleted")
        or invoice["status"] == "draft"
        or document not in ("", "pdf")
    ):
        return _page(404, "Invoice not found", "<p>There is no such invoice.</p>")
    if document == "pdf":
        if method != "GET":
            return _page(405, "Method not allowed", "<p>The PDF is read with GET.</p>")
        filename = f"Invoice-{invoice['number']}.pdf"
        headers = {
            "Content-Type": "application/pdf",
            "Content-Disposition": f'inline; filename="{filename}"',
        }
        return 200, headers, invoice_pdf(invoice)
    title = f"Invoice {invoice['number']}"
    pending = invoice_pending_intent(ctx.store, invoice) is not None
    if invoice["status"] not in PAYABLE or method != "POST":
        return _invoice_view(invoice, title, error=None, pending=pending)
    form = parse_qs(body)
    try:
        if "authenticate" in form:  # the test 3-D Secure challenge: complete or fail it
            succeeded = form["authenticate"][0] == "complete"
            failure = invoice_authenticate(ctx, invoice, succeeded=succeeded)
        else:
            failure = invoice_collect(ctx, invoice, _token(body))
    except StripeError as error:  # an unknown token, or a card that cannot be attached
        failure = PaymentFailure(error.message)
    pending = invoice_pending_intent(ctx.store, invoice) is not None
    if failure is not None:
        status = 200 if failure.intent is not None else 402  # asks for authentication
        return _invoice_view(invoice, title, error=failure.message, status=status, pending=pending)
    return _invoice_view(invoice, title, error=None, note="Thank you: this invoice is paid.")


def _token(body: str) -> str:
    return (parse_qs(body).get("payment_method") or [""])[0]


def _checkout_form(session: Obj, *, error: str | None, status: int = 200) -> Page:
    if session["mode"] == "setup":
        what = "Save a card for later payments"
    else:
        amount = f"{session['amount_total'] / 100:.2f} {str(session['currency']).upper()}"
        what = f"Subscribe — {amount} per period"
    cancel = (
        f'<p><a href="{html.escape(session["cancel_url"])}">Cancel and go back</a></p>'
        if session["cancel_url"]
        else ""
    )
    return _page(status, "Test checkout", _card_form(what, session["url"], error) + cancel)


def _invoice_view(
    invoice: Obj,
    title: str,
    *,
    error: str | None,
    status: int = 200,
    note: str = "",
    pending: bool = False,
) -> Page:
    """The invoice's lines and totals, a link to its PDF, and (while open) the card form."""
    currency = invoice["currency"]
    rows = "".join(
        f"<tr><td>{html.escape(line['description'] or '-')}</td>"
        f"<td class='n'>{line['quantity'] if line['quantity'] is not None else 1}</td>"
        f"<td class='n'>{money(line['amount'], currency)}</td></tr>"
        for line in invoice["lines"]["data"]
    )
    table = (
        "<table><thead><tr><th>Description</th><th class='n'>Qty</th>"
        f"<th class='n'>Amount</th></tr></thead><tbody>{rows}</tbody><tfoot>"
        f"<tr><th colspan='2'>Total</th><td class='n'>{money(invoice['total'], currency)}</td></tr>"
        f"<tr><th colspan='2'>Amount paid</th>"
        f"<td class='n'>{money(invoice['amount_paid'], currency)}</td></tr>"
        "</tfoot></table>"
    )
    parts = [
        f"<p>Status: <strong class='status'>{html.escape(invoice['status'])}</strong></p>",
        f"<p class='ok'>{html.escape(note)}</p>" if note else "",
        table,
        f'<p><a href="{html.escape(invoice["invoice_pdf"] or "")}">Download the PDF</a></p>',
    ]
    if invoice["status"] in PAYABLE and pending:
        amount = money(invoice["amount_remaining"], currency)
        problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        action = html.escape(invoice["hosted_invoice_url"])
        parts.append(
            f"<section class='authentication'><h2>Authentication required</h2>{problem}"
            f"<p>Your bank asks you to confirm the payment of {html.escape(amount)} "
            "(a test 3-D Secure challenge).</p>"
            f'<form method="post" action="{action}">'
            '<button type="submit" name="authenticate" value="complete">'
            "Complete authentication</button> "
            '<button type="submit" name="authenticate" value="fail">'
            "Fail authentication</button></form></section>"
        )
        error = None
    if invoice["status"] in PAYABLE:
        amount = money(invoice["amount_remaining"], currency)
        parts.append(_card_form(f"Amount due: {amount}", invoice["hosted_invoice_url"], error))
    return _page(status, title, "".join(parts))


def _card_form(what: str, action: str, error: str | None) -> str:
    cards = "".join(
        f'<label><input type="radio" name="payment_method" value="{token}"'
        f"{' checked' if index == 0 else ''}> {html.escape(label)}</label>"
        for index, (token, label) in enumerate(PAGE_TOKENS)
    )
    problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return (
        f"<p>{html.escape(what)}</p>{problem}"
        f'<form method="post" action="{html.escape(action)}">{cards}'
        '<button type="submit">Confirm</button></form>'
    )


def _page(status: int, title: str, content: str) -> Page:
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} · local emulator</title><style>{_STYLE}</style></head><body>"
        '<p class="banner">Local Stripe emulator — test mode only. No real payment is made.</p>'
        f"<h1>{html.escape(title)}</h1>{content}</body></html>"
    )
    return status, {"Content-Type": "text/html; charset=utf-8"}, document.encode()
