"""Two Handoff replicas on one PostgreSQL, over real HTTP: each card posted once, one log, one scheduler leader."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pg_server import SERVER, requires_server

from handoff.bot.app import CORE, SETTINGS, create_app
from handoff.bot.fakes.postgres import scratch_schema
from handoff.bot.fakes.stack import local_stack, serve
from handoff.bot.fakes.waiting import wait_until
from handoff.state import decision_log

pytestmark = requires_server

PROCUREMENT = "C0PROCURE"


@pytest.fixture
async def replicas():
    """The local stack (replica one) plus a second Handoff app with the same settings, served on its own port."""
    with scratch_schema(SERVER) as url:
        async with local_stack(url) as one:
            second = create_app(one.app[SETTINGS], one.routing)
            runner, address = await serve(second, 0)
            try:
                yield one, replace(one, app=second, urls={**one.urls, "handoff": address}), runner
            finally:
                await runner.cleanup()


def top_level(stack, reference: str):
    return [m for m in stack.slack.messages.get(PROCUREMENT, []) if m.thread_ts is None and reference in m.text]


async def test_orders_split_between_replicas_get_one_card_each_and_survive_one_replica_stopping(replicas, caplog):
    one, two, two_runner = replicas
    for stack, reference in ((one, "P00042"), (two, "P00043"), (one, "P00044"), (two, "P00045")):
        status, body = await stack.send_order(reference)
        assert (status, body["status"]) == (200, "accepted")
    await two.send_order("P00042")  # Odoo redelivers to whichever replica the balancer picks

    cards = {ref: await one.card(PROCUREMENT, ref) for ref in ("P00042", "P00043", "P00044", "P00045")}
    await one.settled()
    await two.settled()
    assert {ref: len(top_level(one, ref)) for ref in cards} == dict.fromkeys(cards, 1)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], "each event was processed by one replica only"

    stores = [one.app[CORE].store, two.app[CORE].store]
    assert len(stores[0].find_requests("P00042")) == 1, "the redelivery did not open a second request"
    assert [s.try_lead("scheduler") for s in stores].count(True) == 1, "exactly one replica leads"

    await two_runner.cleanup()  # replica two goes away; a card it posted is still answered by replica one
    await one.click("dana", cards["P00043"], "handoff.approve")
    orders = one.odoo.db.records["purchase.order"]
    await wait_until(lambda: orders[one.orders["P00043"]]["state"] == "purchase", what="the approval written to Odoo")
    await wait_until(lambda: stores[0].try_lead("scheduler"), what="replica one to take over the scheduler")
    await one.settled()
    checked = decision_log.verify(stores[0].conn)
    assert checked.ok, checked.problems
