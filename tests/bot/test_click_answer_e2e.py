"""The worker keeps answering: a click at once with its decision to follow, and cards while the scheduler fails."""

from __future__ import annotations

import asyncio


from handoff.bot.app import CORE, WORKER
from handoff.bot.core.schedule import Scheduler
from handoff.bot.fakes.waiting import wait_until

PROCUREMENT = "C0PROCURE"


async def test_a_click_is_answered_while_odoo_is_still_checking_the_order(stack, monkeypatch):
    await stack.send_order("P00043")
    card = await stack.card(PROCUREMENT, "P00043")
    await stack.settled()
    odoo, answer_check = stack.app[CORE].connectors["odoo"], asyncio.Event()
    check = odoo.unchanged

    async def slow_check(record):
        await answer_check.wait()
        return await check(record)

    monkeypatch.setattr(odoo, "unchanged", slow_check)

    status, _ = await asyncio.wait_for(stack.click("erik", card, "handoff.approve"), timeout=5)

    assert status == 200
    assert not stack.app[WORKER].is_settled(), "the decision is still under way"
    assert stack.order_state("P00043") == "to approve"
    answer_check.set()
    await stack.settled()
    await wait_until(lambda: stack.order_state("P00043") == "purchase", what="the approval in Odoo")


async def test_cards_still_go_out_while_every_scheduler_tick_fails(stack, monkeypatch):
    async def broken_tick(self):
        raise RuntimeError("a bug in the scheduler")

    monkeypatch.setattr(Scheduler, "tick", broken_tick)

    await stack.send_order("P00043")

    card = await stack.card(PROCUREMENT, "P00043")
    assert "P00043" in card.text
