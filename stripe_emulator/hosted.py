"""The emulator's stand-ins for Stripe's hosted pages: Checkout and the invoice page.

``GET /checkout/<session>`` shows the session and the test cards; ``POST`` with
``payment_method=<test token>`` completes it and redirects (303) to ``success_url``; a
decline re-renders the page with the reason. ``/invoice/<invoice>`` (an open invoice's
``hosted_invoice_url``) pays the invoice the same way. Plainly labelled, no Stripe branding.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from .cards import PAGE_TOKENS
from .context import Context
from .errors import StripeError
from .resources.checkout import SESSION, CheckoutDeclined, checkout_session_complete
from .resources.invoicing import PaymentFailure, invoice_collect
from .store import Obj

Page = tuple[int, dict[str, str], bytes]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
.banner{background:#fff3c4;border:1px solid #e0c060;padding:.5rem .75rem;border-radius:4px}
.error{background:#fde2e2;border:1px solid #d66;padding:.5rem .75rem;border-radius:4px}
label{display:block;margin:.4rem 0} button{margin-top:1rem;padding:.5rem 1.2rem}
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
    invoice = ctx.store.get(path.removeprefix("/invoice/").strip("/"))
    if invoice is None or invoice.get("object") != "invoice" or invoice.get("deleted"):
        return _page(404, "Invoice not found", "<p>There is no such invoice.</p>")
    title = f"Invoice {invoice['number'] or invoice['id']}"
    if invoice["status"] != "open":
        return _page(200, title, f"<p>This invoice is {html.escape(invoice['status'])}.</p>")
    if method != "POST":
        return _invoice_form(invoice, title, error=None)
    try:
        failure = invoice_collect(ctx, invoice, _token(body))
    except StripeError as error:  # an unknown token, or a card that cannot be attached
        failure = PaymentFailure(error.message)
    if failure is not None:
        return _invoice_form(invoice, title, error=failure.message, status=402)
    return _page(200, title, "<p>Thank you: this invoice is paid.</p>")


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


def _invoice_form(invoice: Obj, title: str, *, error: str | None, status: int = 200) -> Page:
    amount = f"{invoice['amount_remaining'] / 100:.2f} {invoice['currency'].upper()}"
    form = _card_form(f"Amount due: {amount}", invoice["hosted_invoice_url"], error)
    return _page(status, title, form)


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
