"""A real `handoff serve` on PostgreSQL outlives its database connections: terminated backends, a server away."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from crash_harness import Handoff, fakes
from pg_server import SERVER, requires_server

from handoff.bot.core.events import Event
from handoff.bot.core.ports import SystemClock
from handoff.bot.fakes.postgres import (
    scratch_schema,
    terminate_connections,
    with_application_name,
)
from handoff.bot.fakes.tcp_proxy import TcpProxy
from handoff.bot.fakes.waiting import wait_until
from handoff.state import decision_log
from handoff.state.store import Store

pytestmark = requires_server

PROCUREMENT = "C0PROCURE"
PASSWORD = "hunter2-never-logged"  # trust authentication ignores it; the logs must not show it
# Below 10,000 EUR: one procurement stage, so one click completes each (bot/samples/routing.toml, rule po-standard).
ORDERS = [f"P{n:05d}" for n in range(201, 207)]


class Setup:
    """Fake Odoo and Slack, one scratch schema, and an observer connection of the test's own."""

    def __init__(self, running, url: str, http: aiohttp.ClientSession, logs) -> None:
        self.fakes, self.url, self.http, self.logs = running, url, http, logs
        self.name = "handoff-restart-" + uuid.uuid4().hex[:8]
        self.observer = Store(url, SystemClock())
        self.started: list[Handoff] = []

    def handoff(self, url: str | None = None) -> Handoff:
        """A Handoff process whose connections carry this test's application name, optionally through a proxy."""
        self.started.append(Handoff(self.fakes, with_application_name(url or self.url, self.name), self.http, logs=self.logs))
        return self.started[-1]

    def logged(self, event: str) -> dict[str, int]:
        rows = self.observer.conn.execute(
            "SELECT r.reference, COUNT(*) FROM decision_log d JOIN requests r ON r.id = d.request_id WHERE d.event = ?"
            " GROUP BY r.reference", (event,)).fetchall()
        return dict(rows)

    def leftovers(self) -> dict[str, int]:
        inbox = self.observer.conn.execute("SELECT COUNT(*) FROM inbox WHERE status = 'pending'").fetchone()[0]
        outbox = self.observer.conn.execute("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'dead')").fetchone()[0]
        return {"inbox": inbox, "outbox": outbox}

    def leads(self) -> bool:
        """Whether a connection of the Handoff process holds the scheduler's advisory lock (see state/pg.py)."""
        key = self.observer.conn.advisory_key("scheduler")  # the observer shares the process's schema, so its key
        row = self.observer.conn.execute(
            "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory'"
            " AND l.granted AND l.classid::bigint = ? AND l.objid::bigint = ? AND l.objsubid = 1 AND a.application_name = ?",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF, self.name)).fetchone()
        return row[0] == 1

    def log_text(self) -> str:
        return "".join(path.read_text() for path in self.logs.glob("handoff-*.log"))


@pytest.fixture
async def setup(tmp_path):
    url = SERVER.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)
    with scratch_schema(url) as scratch:
        async with fakes() as running, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for reference in ORDERS:
                running.orders[reference] = running.odoo.add_purchase_order(
                    name=reference, vendor="Acme Supplies", lines=[("Steel bolts M8 (box of 100)", 10, 12.0)])
            made = Setup(running, scratch, http, tmp_path)
            try:
                yield made
            finally:
                made.observer.close()
                for process in made.started:
                    await process.kill()


async def eventually(probe: Callable[[], Awaitable[int | None]], wanted: int, *, timeout: float, what: str) -> None:
    """Ask again until the answer is `wanted`; anything but `wanted` or 503 (or no answer) fails at once."""
    deadline = time.monotonic() + timeout
    while (status := await probe()) != wanted:
        assert status in (503, None), f"{what}: answered {status}"
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def health(handoff: Handoff) -> int | None:
    try:
        async with handoff.http.get(f"{handoff.url}/healthz") as response:
            return response.status
    except aiohttp.ClientError:
        return None


async def test_backends_terminated_mid_work_lose_nothing_double_nothing_and_the_lead_comes_back(setup):
    handoff = setup.handoff()
    await handoff.start()
    await wait_until(setup.leads, timeout=10, what="the process to lead the scheduler")

    for n, reference in enumerate(ORDERS):
        if n % 2:
            # While the previous order is being enriched, posted and logged: a restart as the process sees it.
            assert terminate_connections(SERVER, setup.name) >= 1
        # An ERP that redelivers until it gets a 200, as Dataverse does on 503 (Odoo's reconciler catches the rest).
        await eventually(lambda: handoff.send_order(reference), 200, timeout=20, what=f"{reference} to be accepted")

    cards = setup.fakes.cards
    await wait_until(lambda: all(cards(PROCUREMENT, r) for r in ORDERS), timeout=20, what="a card for every order")
    await wait_until(lambda: setup.leftovers() == {"inbox": 0, "outbox": 0}, timeout=20, what="both queues to drain")
    assert {r: len(cards(PROCUREMENT, r)) for r in ORDERS} == dict.fromkeys(ORDERS, 1)
    assert setup.logged(Event.REQUEST_RECEIVED) == dict.fromkeys(ORDERS, 1)
    assert setup.logged(Event.CARD_POSTED) == dict.fromkeys(ORDERS, 1)

    for n, reference in enumerate(ORDERS):
        if n % 2 == 0:
            terminate_connections(SERVER, setup.name)
        [card] = cards(PROCUREMENT, reference)
        assert await handoff.click("dana", card, "handoff.approve") == 200
    purchase = setup.fakes.odoo.db.records["purchase.order"]
    await wait_until(lambda: all(purchase[setup.fakes.orders[r]]["state"] == "purchase" for r in ORDERS),
                     timeout=20, what="every approval written to Odoo")
    await wait_until(lambda: setup.logged(Event.REQUEST_COMPLETED) == dict.fromkeys(ORDERS, 1), timeout=20,
                     what="every request to complete")
    assert setup.fakes.odoo.calls["purchase.order.button_approve"] == len(ORDERS)
    assert setup.logged(Event.DECISION_RECORDED) == dict.fromkeys(ORDERS, 1)
    checked = decision_log.verify(setup.observer.conn)
    assert checked.ok, checked.problems

    await wait_until(setup.leads, timeout=10, what="the reconnected process to lead the scheduler again")
    logs = setup.log_text()
    assert "store.connection_lost" in logs and "store.reconnected" in logs
    assert PASSWORD not in logs


async def test_healthz_is_down_while_the_database_is_away_and_a_webhook_is_refused_then_taken(setup):
    with TcpProxy.in_front_of(setup.url) as proxy:
        handoff = setup.handoff(proxy.route(setup.url))
        await handoff.start()
        reference = ORDERS[0]

        proxy.down()
        await eventually(lambda: health(handoff), 503, timeout=10, what="/healthz to report the database down")
        assert await handoff.send_order(reference) == 503, "never a 200 for a webhook that was not stored"
        assert setup.observer.conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 0

        proxy.up()
        await eventually(lambda: health(handoff), 200, timeout=20, what="/healthz to report the database back")
        assert await handoff.send_order(reference) == 200
        await wait_until(lambda: setup.fakes.cards(PROCUREMENT, reference), timeout=20, what="the order's card")
        await wait_until(lambda: setup.leads(), timeout=10, what="the process to lead the scheduler")
    assert len(setup.fakes.cards(PROCUREMENT, reference)) == 1
    logs = setup.log_text()
    assert "store.reconnect_failed" in logs and "store.reconnected" in logs
    assert PASSWORD not in logs
