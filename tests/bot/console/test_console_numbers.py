"""Numbers on the console from a store seeded with known times: age buckets, medians and p90s, weekly cycle, rates."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web
from console_helpers import always_open, text_of

from handoff.bot.console import ConsoleSettings, register_console
from handoff.bot.core.context import Core
from handoff.bot.core.events import Event
from handoff.bot.core.models import ApprovalPacket, ErpRecord, RecordRef, RequestStatus, RoutePlan, StagePlan
from handoff.bot.fakes.stack import SAMPLE_ROUTING
from handoff.bot.routing_file import load_routing
from handoff.state.store import Store

CORE = web.AppKey("core", Core)


def open_request(store: Store, clock, reference: str, unit: str, kind: str | None) -> str:
    record = ErpRecord(ref=RecordRef(source="odoo", model="purchase.order", record_id=reference), reference=reference,
                       state="to approve", vendor="Acme Supplies", amount=Decimal("100"), currency="EUR",
                       business_unit=unit, exception_type=kind)
    packet = ApprovalPacket(request_id=Store.new_request_id(), version=1, record=record, fingerprint=record.fingerprint())
    plan = RoutePlan(rule="po-standard", level="global", stages=(StagePlan(index=0, role="procurement_manager", sla_hours=8),))
    with store.transaction():
        return store.create_request(packet, plan, "slack", None, clock.now()).id


def decide(store: Store, clock, rid: str, outcome: str) -> None:
    with store.transaction():
        store.decide_stage(rid, 0, outcome, "dana", clock.now())
        store.set_status(rid, RequestStatus(outcome), clock.now())


@pytest.fixture
async def console(aiohttp_client, fresh_store, clock):
    app = web.Application()
    app[CORE] = Core(store=fresh_store, routing=always_open(load_routing(SAMPLE_ROUTING)), connectors={}, clock=clock)
    register_console(app, ConsoleSettings(local_development=True), CORE)
    return await aiohttp_client(app, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_approval_duration_median_and_p90_and_rates(console, fresh_store, clock):
    ids = [open_request(fresh_store, clock, f"P{n}", "EU", kind) for n, kind in
           ((1, "price_variance"), (2, "price_variance"), (3, "missing_receipt"))]
    fresh_store.log(ids[1], Event.INFO_REQUESTED, "dana", {"question": "Which quote?", "stage": 0})
    clock.advance(hours=1)
    decide(fresh_store, clock, ids[0], "approved")
    clock.advance(hours=1)
    decide(fresh_store, clock, ids[1], "rejected")
    clock.advance(hours=8)
    decide(fresh_store, clock, ids[2], "approved")
    seen = text_of(await (await console.get("/console/insights")).text())
    # Durations 1h, 2h, 10h: median 2.0; p90 interpolates 2 + 0.8 × 8 = 8.4.
    assert "Stage 1 · Procurement manager 2.0 h 8.4 h 3" in seen
    week = "{}-W{:02d}".format(*clock.now().isocalendar()[:2])
    assert f"{week} 2.0 h 3" in seen
    assert "price_variance 50% 50% 2" in seen and "missing_receipt 0% 0% 1" in seen


async def test_age_buckets_on_the_aging_board(console, fresh_store, clock):
    open_request(fresh_store, clock, "OLD", "EU", "price_variance")
    clock.advance(days=4)
    open_request(fresh_store, clock, "DAY", "EU", "price_variance")
    clock.advance(hours=30)
    open_request(fresh_store, clock, "NEW", "EU", "price_variance")
    clock.advance(hours=1)
    page = await (await console.get("/console/")).text()
    row = page.split('<table id="aging">')[1].split("<td>EU</td><td>price_variance</td>")[1].split("</tr>")[0]
    cells = row.replace("</td>", "").split("<td>")[1:]
    assert ["NEW" in cells[0], "DAY" in cells[2], "OLD" in cells[3]] == [True, True, True]
    assert "3 open requests, 2 stalled." in text_of(page), "OLD and DAY are past the 8h SLA, NEW is not"
