"""The words and figures every card shows, whatever the platform: raw text for a renderer to escape and lay out."""

from __future__ import annotations

from decimal import Decimal

from handoff.bot.core.models import CardView, ErpRecord, Line, RequestStatus, VendorHistory
from handoff.bot.core.view import role_label

TOP_LINES = 5
TOP_NOTES = 5

# Labels both renderers show, so Slack and Teams read the same.
VENDOR = "Vendor"
AMOUNT = "Amount"
REQUESTER = "Requester"
RECORD = "Record"
UNIT = "Business unit"
EXCEPTION = "Exception"
VENDOR_HISTORY = "Vendor history"
LINES_HEADING = "Lines"
MISSING_HEADING = "Missing before you decide"
POLICY_HEADING = "Policy"
INCOMPLETE = "Incomplete"
HISTORY_HEADING = "History"

# ISO 4217 currencies without minor units; every other currency shows two decimals.
_NO_DECIMALS = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}

_STATUS = {
    RequestStatus.OPEN: "Approval needed",
    RequestStatus.APPROVED: "Approved",
    RequestStatus.REJECTED: "Rejected",
    RequestStatus.CLOSED_IN_ERP: "Decided in the ERP",
    RequestStatus.FAILED: "Needs attention",
}


def figure(amount: Decimal, currency: str) -> str:
    """`12,500.00`: grouped thousands and the currency's own decimals."""
    places = 0 if currency.upper() in _NO_DECIMALS else 2
    return f"{amount:,.{places}f}"


def money(amount: Decimal, currency: str) -> str:
    """`12,500.00 EUR`."""
    return f"{figure(amount, currency)} {currency}"


def quantity(value: Decimal) -> str:
    """`10`, `2.5`: no trailing zeros, no exponent."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def line_text(line: Line, currency: str) -> str:
    """`Office chair — 10 × 120.00 = 1,200.00 EUR`."""
    return f"{line.description} — {quantity(line.quantity)} × {figure(line.unit_price, currency)} = {money(line.subtotal, currency)}"


def top_lines(lines: tuple[Line, ...], limit: int = TOP_LINES) -> tuple[tuple[Line, ...], int]:
    """The first `limit` lines and how many more there are."""
    return lines[:limit], max(len(lines) - limit, 0)


def more(hidden: int, noun: str = "line") -> str | None:
    """`+3 more lines`, or None when nothing is hidden."""
    if hidden <= 0:
        return None
    return f"+{hidden} more {noun}{'s' if hidden != 1 else ''}"


def status_label(view: CardView) -> str:
    """What the card is, in two words: `Approval needed`, `Approved`…"""
    return _STATUS[view.status]


def summary(view: CardView) -> str:
    """`Approval needed: P00042 · Acme Supplies · 12,500.00 EUR`: the notification and fallback text."""
    record = view.packet.record
    return f"{status_label(view)}: {record.reference} · {record.vendor} · {money(record.amount, record.currency)}"


def stage_text(view: CardView) -> str:
    """`Stage 1 of 2 · Finance approver`."""
    return f"Stage {view.stage + 1} of {view.stage_count} · {role_label(view.role)}"


def requester_text(record: ErpRecord) -> str:
    """`Sam Buyer (sam@example.com)`, or a plain note that the ERP names nobody."""
    if record.requester is None:
        return "Not on the record"
    person = record.requester
    return f"{person.name} ({person.email})" if person.email else person.name


def unit_text(record: ErpRecord) -> str | None:
    """`Operations · EMEA`, or None when the ERP names neither."""
    parts = [p for p in (record.business_unit, record.region) if p]
    return " · ".join(parts) or None


def vendor_history_text(history: VendorHistory) -> str:
    """`3 open orders · recent exceptions: late delivery, price variance`."""
    orders = f"{history.open_orders} open order{'s' if history.open_orders != 1 else ''}"
    if not history.recent_exceptions:
        return f"{orders} · no recent exceptions"
    return f"{orders} · recent exceptions: {', '.join(history.recent_exceptions)}"


def incomplete_text(reason: str) -> str:
    """The banner for a packet built without the live record."""
    return f"{INCOMPLETE}: {reason}"
