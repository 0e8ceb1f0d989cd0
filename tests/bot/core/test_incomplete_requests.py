"""Which open requests the periodic re-read picks up: only those built from a webhook alone."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from handoff.bot.core.enrich import build_packet
from handoff.bot.core.models import ErpRecord, RecordRef, RequestStatus
from handoff.bot.core.route import RouteFacts, plan_route


def _open(core, record_id: str, vendor: str, incomplete_reason: str | None):
    record = ErpRecord(ref=RecordRef(source="odoo", model="purchase.order", record_id=record_id), reference=f"P{record_id}",
                       state="to approve", vendor=vendor, amount=Decimal(1200), currency="EUR")
    plan = plan_route(core.routing, RouteFacts.from_record(record))
    packet = build_packet(core.store.new_request_id(), 1, record, plan.policy_notes, incomplete_reason)
    with core.store.transaction():
        return core.store.create_request(packet, plan, "slack", None, core.clock.now())


def test_only_open_requests_with_webhook_figures_are_incomplete(core, clock):
    _open(core, "1", "Acme Supplies", None)
    # A vendor whose name quotes the packet's own JSON must not pass for a complete packet.
    tricky = _open(core, "2", '"incomplete_reason":null', "Odoo could not be read (503)")
    clock.advance(seconds=1)
    later = _open(core, "3", "Globex", "Odoo could not be read (timeout)")
    decided = _open(core, "4", "Initech", "Odoo could not be read (503)")
    core.store.set_status(decided.id, RequestStatus.APPROVED, core.clock.now() + timedelta(seconds=1))

    assert [r.id for r in core.store.incomplete_requests()] == [tricky.id, later.id]
