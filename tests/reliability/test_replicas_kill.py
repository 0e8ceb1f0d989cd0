"""Two real `handoff serve` processes on one PostgreSQL, one killed mid-work: the other finishes, nothing lost or doubled."""

from __future__ import annotations

import aiohttp
import pytest
from crash_harness import KILLED, Handoff, fakes
from pg_server import SERVER, requires_server

from handoff.bot.core.events import Event
from handoff.bot.core.ports import SystemClock
from handoff.bot.fakes.postgres import scratch_schema
from handoff.bot.fakes.waiting import wait_until
from handoff.state import decision_log
from handoff.state.store import Store

pytestmark = requires_server

PROCUREMENT = "C0PROCURE"
# Below 10,000 EUR: one procurement stage, so one click completes each (bot/samples/routing.toml, rule po-standard).
ORDERS = [f"P{n:05d}" for n in range(101, 109)]


@pytest.fixture
async def replicas(tmp_path):
    """Fake Odoo (with the orders) and Slack, and two Handoff processes on one fresh PostgreSQL schema."""
    with scratch_schema(SERVER) as url:
        async with fakes() as running, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for reference in ORDERS:
                running.orders[reference] = running.odoo.add_purchase_order(
                    name=reference, vendor="Acme Supplies", lines=[("Steel bolts M8 (box of 100)", 10, 12.0)])
            one, two = Handoff(running, url, http, logs=tmp_path), Handoff(running, url, http, logs=tmp_path)
            store = Store(url, SystemClock())
            try:
                yield one, two, store
            finally:
                store.close()
                await one.kill()
                await two.kill()


def leftovers(store: Store) -> dict[str, int]:
    """What is still waiting or dead in the shared queues."""
    inbox = store.conn.execute("SELECT COUNT(*) FROM inbox WHERE status = 'pending'").fetchone()[0]
    outbox = store.conn.execute("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'dead')").fetchone()[0]
    return {"inbox": inbox, "outbox": outbox}


def logged(store: Store, event: str) -> dict[str, int]:
    rows = store.conn.execute(
        "SELECT r.reference, COUNT(*) FROM decision_log d JOIN requests r ON r.id = d.request_id WHERE d.event = ?"
        " GROUP BY r.reference", (event,)).fetchall()
    return dict(rows)


async def test_one_replica_killed_mid_post_leaves_one_card_per_order_and_one_write_back_each(replicas):
    doomed, survivor, store = replicas
    # The doomed replica dies at its first card, after Slack has it and before the database knows.
    await doomed.start(crash_at="mid_post")
    await survivor.start()
    odoo, slack_cards = doomed.fakes.odoo, doomed.fakes.cards

    for n, reference in enumerate(ORDERS):
        first, second = (doomed, survivor) if n % 2 == 0 else (survivor, doomed)
        if await first.send_order(reference) != 200:
            # The balancer's answer to a dead backend: Odoo's retry lands on the other one.
            assert await second.send_order(reference) == 200
    if doomed.process.returncode is None:
        # The survivor happened to take every event: kill the other by hand, mid-work or not, as the test promises.
        await wait_until(lambda: any(slack_cards(PROCUREMENT, r) for r in ORDERS), timeout=20, what="a first card")
        await doomed.kill()
    assert await doomed.died() in (KILLED, -9)

    await wait_until(lambda: all(slack_cards(PROCUREMENT, r) for r in ORDERS), timeout=20, what="a card for every order")
    await wait_until(lambda: leftovers(store) == {"inbox": 0, "outbox": 0}, timeout=20, what="the survivor to drain both queues")
    assert {r: len(slack_cards(PROCUREMENT, r)) for r in ORDERS} == dict.fromkeys(ORDERS, 1)
    assert logged(store, Event.CARD_POSTED) == dict.fromkeys(ORDERS, 1)
    assert logged(store, Event.REQUEST_RECEIVED) == dict.fromkeys(ORDERS, 1)

    for reference in ORDERS:
        [card] = slack_cards(PROCUREMENT, reference)
        assert await survivor.click("dana", card, "handoff.approve") == 200
    purchase = odoo.db.records["purchase.order"]
    await wait_until(lambda: all(purchase[doomed.fakes.orders[r]]["state"] == "purchase" for r in ORDERS),
                     timeout=20, what="every approval written to Odoo")
    await wait_until(lambda: logged(store, Event.REQUEST_COMPLETED) == dict.fromkeys(ORDERS, 1), timeout=20,
                     what="every request to complete")
    await wait_until(lambda: leftovers(store) == {"inbox": 0, "outbox": 0}, timeout=20, what="the queues to drain again")

    assert odoo.calls["purchase.order.button_approve"] == len(ORDERS)
    assert logged(store, Event.DECISION_RECORDED) == dict.fromkeys(ORDERS, 1)
    assert {r: len(slack_cards(PROCUREMENT, r)) for r in ORDERS} == dict.fromkeys(ORDERS, 1)
    checked = decision_log.verify(store.conn)
    assert checked.ok, checked.problems


async def test_a_click_one_replica_answered_and_died_on_is_decided_by_the_other_once_its_lease_runs_out(replicas):
    doomed, survivor, store = replicas
    await doomed.start(crash_at="after_ack")
    await survivor.start()
    reference, odoo = ORDERS[0], doomed.fakes.odoo
    assert await survivor.send_order(reference) == 200
    card = await wait_until(lambda: next(iter(doomed.fakes.cards(PROCUREMENT, reference)), None), timeout=20, what="the card")

    # Slack's answer came from the doomed replica, which died before deciding: Slack will never send this click again.
    assert await doomed.click("dana", card, "handoff.approve") == 200
    assert await doomed.died() == KILLED

    order = odoo.db.records["purchase.order"][doomed.fakes.orders[reference]]
    await wait_until(lambda: order["state"] == "purchase", timeout=20, what="the survivor to decide the stored click")
    await wait_until(lambda: logged(store, Event.REQUEST_COMPLETED) == {reference: 1}, timeout=20, what="the request to complete")
    await wait_until(lambda: leftovers(store) == {"inbox": 0, "outbox": 0}, timeout=20, what="the queues to drain")
    assert odoo.calls["purchase.order.button_approve"] == 1
    assert logged(store, Event.DECISION_RECORDED) == {reference: 1}
    assert "handoff.approve" not in str(doomed.fakes.slack.message(PROCUREMENT, card.ts).blocks), "the card shows the decision"
    checked = decision_log.verify(store.conn)
    assert checked.ok, checked.problems
