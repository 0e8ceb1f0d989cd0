"""Card views for renderer tests: one realistic approval, any field of the view, packet or record overridable."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from handoff.bot.core.models import (
    ApprovalPacket,
    CardView,
    ErpPerson,
    ErpRecord,
    Line,
    RecordRef,
    RequestStatus,
    VendorHistory,
)


def _lines(count: int) -> tuple[Line, ...]:
    return tuple(
        Line(description=f"Item {n}", quantity=Decimal(n), unit_price=Decimal("100.00"), subtotal=Decimal(n * 100))
        for n in range(1, count + 1)
    )


def _build(**overrides) -> CardView:
    record_fields = {
        "ref": RecordRef(source="odoo", model="purchase.order", record_id="42"),
        "reference": "P00042",
        "state": "to approve",
        "vendor": "Acme Supplies",
        "amount": Decimal("12500.00"),
        "currency": "EUR",
        "requester": ErpPerson(name="Sam Buyer", login="sam", email="sam@example.com"),
        "lines": _lines(2),
        "business_unit": "Operations",
        "region": "EMEA",
        "attachment_count": 1,
        "url": "https://erp.example.com/odoo/purchase/42",
        "vendor_history": VendorHistory(open_orders=3, recent_exceptions=("late delivery",)),
    }
    packet_fields = {"request_id": "req-1", "version": 1, "policy_notes": ("Above 10,000 EUR: finance approves",)}
    view_fields = {
        "stage": 0,
        "stage_count": 2,
        "role": "finance_approver",
        "status": RequestStatus.OPEN,
        "headline": "Waiting for Finance approver (stage 1 of 2)",
    }
    for key, value in overrides.items():
        for fields, model in ((record_fields, ErpRecord), (packet_fields, ApprovalPacket), (view_fields, CardView)):
            if key in model.model_fields:
                fields[key] = value
                break
        else:
            raise TypeError(f"make_view() got {key!r}, which is no field of CardView, ApprovalPacket or ErpRecord")
    record = ErpRecord(**record_fields)
    packet = ApprovalPacket(record=record, fingerprint=record.fingerprint(), **packet_fields)
    return CardView(packet=packet, **view_fields)


@pytest.fixture
def make_view() -> Callable[..., CardView]:
    """`make_view(vendor="…", lines=make_lines(8), notice="…")`: keywords go to whichever model has that field."""
    return _build


@pytest.fixture
def make_lines() -> Callable[[int], tuple[Line, ...]]:
    """`make_lines(8)`: that many order lines, `Item 1` … `Item 8`."""
    return _lines
