"""A tick over many due stages at once: each is reminded, stalled and escalated once, and its statements do not grow with them."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from handoff.bot.core.context import Core
from handoff.bot.core.events import Event
from handoff.bot.core.models import RequestStatus
from handoff.bot.core.schedule import Scheduler
from handoff.bot.fakes.postgres import database_for_test
from handoff.bot.fakes.stack import SAMPLE_ROUTING
from handoff.bot.routing_file import load_routing
from handoff.state import decision_log, outbox
from handoff.state.store import Store
from opened_requests import open_request_in

MONDAY_9AM = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
MONDAY_1PM = datetime(2026, 11, 23, 13, tzinfo=timezone.utc)  # half of the 8 h SLA: the first reminder
TUESDAY_10AM = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)  # 9 business hours on: past the SLA


class Counted:
    """The store's connection, counting statements: each is a round trip on PostgreSQL."""

    def __init__(self, raw) -> None:
        self.raw, self.statements = raw, 0

    def __getattr__(self, name: str):
        return getattr(self.raw, name)

    def execute(self, sql: str, params=()):
        self.statements += 1
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows):
        self.statements += 1
        return self.raw.executemany(sql, rows)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


async def statements_of_tick(store: Store, scheduler: Scheduler) -> tuple[int, int]:
    """(statements, things done) for one tick."""
    counted, raw = Counted(store.conn), store.conn
    store.conn = counted
    try:
        done = await scheduler.tick()
    finally:
        store.conn = raw
    return counted.statements, done


async def tick_over(orders: int) -> dict:
    """Open `orders` requests, one of them decided meanwhile, and count the statements of the ticks that remind and stall them."""
    clock = Clock(MONDAY_9AM)
    with database_for_test(":memory:") as database:
        store = Store(database, clock)
        try:
            core = Core(store=store, routing=load_routing(SAMPLE_ROUTING), connectors={}, clock=clock)
            make = open_request_in(core)
            requests = [make(f"P{n:05d}", amount="1200") for n in range(orders)]
            scheduler = Scheduler(core, {})
            await scheduler.tick()  # plans every stage
            moved = requests[-1]
            with store.transaction():
                store.set_status(moved.id, RequestStatus.APPROVED, clock.now())

            clock.at = MONDAY_1PM
            reminding = await statements_of_tick(store, scheduler)
            clock.at = TUESDAY_10AM
            stalling = await statements_of_tick(store, scheduler)
            # A replica (or this one, restarted) at the same moment finds everything done.
            again = await Scheduler(core, {}).tick()
            items = outbox.items(store.conn)
            log = decision_log.entries(store.conn)
            return {
                "reminding": reminding, "stalling": stalling, "again": again, "moved": moved.id,
                "ids": [r.id for r in requests],
                "reminders": Counter(i.request_id for i in items if i.payload.get("text", "").startswith("Reminder")),
                "what_changed": Counter(i.request_id for i in items if i.payload.get("what_changed")),
                "escalation_cards": Counter(i.request_id for i in items if i.kind == "post_card"),
                "events": Counter((e.request_id, e.event) for e in log),
                "alerts": Counter(row[0] for row in store.conn.execute("SELECT request_id FROM alerts WHERE resolved_at IS NULL")),
                "chain": decision_log.verify(store.conn),
            }
        finally:
            store.close()


async def test_each_due_stage_of_a_batch_is_reminded_stalled_and_escalated_once_and_a_second_tick_repeats_nothing():
    seen = await tick_over(12)
    waiting = [rid for rid in seen["ids"] if rid != seen["moved"]]
    assert seen["reminding"][1] == len(waiting), "one 50% reminder per open request, none for the decided one"
    # At the SLA: the 100% reminder, the stall (alert, event, what-changed reply) and the first escalation step.
    for rid in waiting:
        assert seen["reminders"][rid] == 2 and seen["what_changed"][rid] == 1 and seen["alerts"][rid] == 1
        assert seen["events"][rid, Event.REQUEST_STALLED] == 1 and seen["events"][rid, Event.STAGE_ESCALATED] == 1
        assert seen["escalation_cards"][rid] >= 1, "the finance director is sent the card"
    moved = seen["moved"]
    assert (seen["reminders"][moved], seen["alerts"][moved], seen["events"][moved, Event.REQUEST_STALLED]) == (0, 0, 0)
    assert seen["again"] == 0
    assert seen["chain"].ok, seen["chain"].problems


async def test_a_tick_makes_as_many_statements_for_forty_due_stages_as_for_four():
    # On PostgreSQL every statement is a round trip that holds the event loop: a tick's count must not grow with its batch.
    few, many = await tick_over(4), await tick_over(40)
    assert (few["reminding"][1], many["reminding"][1]) == (3, 39), "all open but the decided one reminded"
    assert many["reminding"][0] == few["reminding"][0]
    # Only the alert sync goes alert by alert (here each is held back: no chat channel to post to).
    assert many["stalling"][0] == few["stalling"][0] + (40 - 4)
