"""A finalized invoice as a small, valid PDF (``invoice_pdf``), written by hand: PDF 1.4,
the standard Helvetica font (nothing embedded), one text block per page and a correct
cross-reference table, so any reader opens it. Labelled as the local emulator's."""

from __future__ import annotations

from datetime import UTC, datetime

from .store import Obj

LINES_PER_PAGE = 40
_PAGE = (595, 842)  # A4 in points
_LEFT, _TOP, _LEADING = 50, 790, 16


def money(amount: int, currency: str) -> str:
    """Minor units as a decimal amount with the currency code (two decimals)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d} {currency.upper()}"


def _date(timestamp: int | None) -> str:
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def invoice_text(invoice: Obj) -> tuple[list[str], list[str], list[str]]:
    """The header, one row per line, and the totals, as the PDF and tests read them."""
    currency = invoice["currency"]
    billed_to = invoice["customer_name"] or invoice["customer_email"] or invoice["customer"]
    header = [
        f"Invoice {invoice['number']}",
        "Local Stripe emulator - test mode only, not a real invoice",
        "",
        f"Billed to: {billed_to}",
        f"Issued: {_date(invoice['status_transitions']['finalized_at'])}    "
        f"Period: {_date(invoice['period_start'])} to {_date(invoice['period_end'])}",
        f"Status: {invoice['status']}",
        "",
        "Description / quantity / amount",
    ]
    rows = [
        f"{line['description'] or '-'}  x{line['quantity'] if line['quantity'] is not None else 1}"
        f"  {money(line['amount'], currency)}"
        for line in invoice["lines"]["data"]
    ]
    totals = [
        "",
        f"Subtotal: {money(invoice['subtotal'], currency)}",
        f"Total: {money(invoice['total'], currency)}",
        f"Amount due: {money(invoice['amount_due'], currency)}",
        f"Amount paid: {money(invoice['amount_paid'], currency)}",
    ]
    return header, rows, totals


def _escape(text: str) -> bytes:
    # WinAnsiEncoding is cp1252; anything beyond it prints as "?".
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _content(lines: list[str]) -> bytes:
    parts = [b"BT", b"/F1 10 Tf", f"{_LEADING} TL".encode(), f"{_LEFT} {_TOP} Td".encode()]
    for index, text in enumerate(lines):
        size = 16 if index == 0 and text.startswith("Invoice ") else 10
        parts.append(f"/F1 {size} Tf".encode())
        parts.append(b"(" + _escape(text) + b") Tj T*")
    parts.append(b"ET")
    return b"\n".join(parts)


def invoice_pdf(invoice: Obj) -> bytes:
    header, rows, totals = invoice_text(invoice)
    chunks = [rows[i : i + LINES_PER_PAGE] for i in range(0, len(rows), LINES_PER_PAGE)] or [[]]
    pages = []
    for number, chunk in enumerate(chunks, start=1):
        top = header if number == 1 else [f"Invoice {invoice['number']} (continued)", ""]
        bottom = totals if number == len(chunks) else []
        footer = [f"Page {number} of {len(chunks)}"] if len(chunks) > 1 else []
        pages.append(top + chunk + bottom + footer)
    # Objects: 1 catalog, 2 page tree, 3 font, then a page and its content per page.
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] "
        f"/Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for page_id, lines in zip(page_ids, pages, strict=True):
        stream = _content(lines)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_PAGE[0]} {_PAGE[1]}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)
