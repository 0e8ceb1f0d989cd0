"""Requests opened straight in the store, as ingest would open them, for core tests that build their own Core."""

from __future__ import annotations

from decimal import Decimal

from handoff.bot.core.context import Core
from handoff.bot.core.enrich import build_packet
from handoff.bot.core.models import ErpPerson, ErpRecord, RecordRef, RequestState
from handoff.bot.core.route import RouteFacts, person_for_erp, plan_route


def open_request_in(core: Core):
    """A maker of open requests in `core`'s store: the `open_request` fixture, and tests that build their own Core."""
    counter = iter(range(1, 1000))

    def make(reference: str, amount: str = "1200", vendor: str = "Acme Supplies", business_unit: str | None = None,
             requester: str | None = "marc@example.com", exception_type: str | None = None) -> RequestState:
        record = ErpRecord(
            ref=RecordRef(source="odoo", model="purchase.order", record_id=str(next(counter))), reference=reference,
            state="to approve", vendor=vendor, amount=Decimal(amount), currency="EUR", business_unit=business_unit,
            requester=ErpPerson(name=requester, login=requester) if requester else None, exception_type=exception_type,
        )
        plan = plan_route(core.routing, RouteFacts.from_record(record))
        person = person_for_erp(core.routing, record.requester)
        packet = build_packet(core.store.new_request_id(), 1, record, plan.policy_notes)
        with core.store.transaction():
            return core.store.create_request(packet, plan, "slack", person.key if person else None, core.clock.now())

    return make
