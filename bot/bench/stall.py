"""Scenario 3, the stall scan: one scheduler tick over many open requests in the store (SQLite or PostgreSQL), a share of them due."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from handoff.bot.core.context import Core
from handoff.bot.core.enrich import build_packet
from handoff.bot.core.models import ErpRecord, Line, RecordRef, Target
from handoff.bot.core.route import RouteFacts, RoutingConfig, plan_route
from handoff.bot.fakes.clock import OffsetClock
from handoff.state.stamps import stamp
from handoff.state.store import Store

# What a tick reads first (migration 2: stages.due_at under a partial index), timed on its own as well: it is the
# part that grows with the number of open requests; the rest of a tick grows with the number due.
DUE = "SELECT request_id, stage, due_step, started_at FROM stages WHERE status = 'pending' AND due_at IS NOT NULL AND due_at <= ?"


# Due stages started a week before the tick: five working days, well past an SLA counted in business hours, so each is
# stalled (alert, log entry, what-changed reply) and reminded, the tick's heaviest path.
OVERDUE = timedelta(days=7)


def working_moment(after: datetime) -> datetime:
    """The first Wednesday 14:00 UTC after `after`: inside the default business hours, so no reminder waits for a morning."""
    days = (2 - after.weekday()) % 7 or 7
    return (after + timedelta(days=days)).replace(hour=14, minute=0, second=0, microsecond=0)


def seed(store: Store, routing: RoutingConfig, rows: int, due_share: float, now: datetime) -> int:
    """`rows` open requests on their first stage, planned; `due_share` of them overdue by OVERDUE, the rest started lately."""
    record = ErpRecord(ref=RecordRef(source="odoo", model="purchase.order", record_id="1"), reference="BX000001",
                       state="to approve", vendor="Bench Supplies", amount=Decimal("899.00"), currency="EUR",
                       lines=(Line(description="Cordless drill 18V", quantity=Decimal(10), unit_price=Decimal("89.9"), subtotal=Decimal("899.00")),))
    plan = plan_route(routing, RouteFacts.from_record(record))
    sla = timedelta(hours=plan.stages[0].sla_hours)
    packet = build_packet("r-bench", 1, record, plan.policy_notes).model_dump_json()
    every = max(1, round(1 / due_share))
    requests, stages = [], []
    for n in range(rows):
        started = now - (OVERDUE if n % every == 0 else timedelta(minutes=n % 60))
        request_id = f"r-bench{n:07d}"
        requests.append((request_id, f"odoo:purchase.order:{n + 1}", str(n + 1), f"BX{n:06d}", packet, plan.model_dump_json(), stamp(started), stamp(started)))
        stages += [(request_id, s.index, "pending" if s.index == 0 else "waiting", stamp(started) if s.index == 0 else None,
                    stamp(started + sla) if s.index == 0 else None) for s in plan.stages]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO requests (id, ref_key, source, model, record_id, reference, status, version, stage, platform, packet, plan,"
            " created_at, updated_at) VALUES (?, ?, 'odoo', 'purchase.order', ?, ?, 'open', 1, 0, 'slack', ?, ?, ?, ?)", requests)
        conn.executemany("INSERT INTO stages (request_id, stage, status, started_at, due_at) VALUES (?,?,?,?,?)", stages)
    return len(range(0, rows, every))


class AlertSink:
    """The ops channel as the scheduler sees it, answering at once: the tick's alert sync is measured, not a chat API."""

    def __init__(self) -> None:
        self.posted = 0

    async def post_alert(self, target: Target, text: str) -> tuple[str, str]:
        self.posted += 1
        return target.address, f"alert-{self.posted}"

    async def update_alert(self, conversation: str, message_id: str, text: str) -> None:
        return None


def _timed(work) -> float:
    begin = time.perf_counter()
    work()
    return round((time.perf_counter() - begin) * 1000, 2)


async def measure(database: str | Path, routing: RoutingConfig, rows: int, due_share: float = 0.01) -> dict:
    """Seed a fresh store, time the due query, then one scheduler tick if the scheduler can be built."""
    # At the same moment of the working week in every run: at night or at the weekend a tick only postpones reminders.
    clock = OffsetClock()
    clock.jump_to(working_moment(clock.now()))
    now = clock.now()
    store = Store(database, clock)
    try:
        begin = time.perf_counter()
        due = seed(store, routing, rows, due_share, now)
        result: dict = {"open_requests": rows, "due": due, "seed_seconds": round(time.perf_counter() - begin, 2)}
        found: list = []
        result["due_query_ms"] = min(_timed(lambda: found.__setitem__(slice(None), store.conn.execute(DUE, (stamp(now),)).fetchall()))
                                     for _ in range(3))
        result["due_found"] = len(found)
        result.update(await _tick(store, routing))
        return result
    finally:
        store.close()


async def _tick(store: Store, routing: RoutingConfig) -> dict:
    try:
        from handoff.bot.core.schedule import Scheduler
    except ImportError as error:
        return {"tick_ms": None, "scheduler": f"not importable yet ({error}): only the due query was timed"}
    try:
        sink = AlertSink()
        scheduler = Scheduler(Core(store=store, routing=routing, connectors={}, clock=store.clock), {"slack": sink, "teams": sink})
        begin = time.perf_counter()
        first = await scheduler.tick()
        one = time.perf_counter() - begin
        ticks, done = 1, first
        # Ticks until the backlog is gone (each handles one batch): what 1% of the open requests falling due costs.
        while done and ticks < 1000:
            done, ticks = await scheduler.tick(), ticks + 1
    except Exception as error:  # noqa: BLE001 — a scheduler still in progress is reported, and the bench goes on
        return {"tick_ms": None, "scheduler": f"tick failed ({type(error).__name__}: {error}): only the due query was timed"}
    return {"tick_ms": round(one * 1000, 2), "tick_actions": first, "all_due_ms": round((time.perf_counter() - begin) * 1000, 2),
            "all_due_ticks": ticks, "scheduler": f"Scheduler.tick(), at most {scheduler.batch} due stages a tick, each stalled and reminded; "
            "stall alerts to an instant sink, 50 a tick"}
