"""A Slack click is stored before Slack gets its answer, and counts once however often it is delivered or acted on."""

from __future__ import annotations

import asyncio

from handoff.bot.app import WORKER
from handoff.bot.core.clicks import StoredClick
from handoff.bot.core.events import Event
from handoff.bot.core.models import Action, ChatIdentity, Verb
from handoff.bot.fakes.waiting import wait_until

PROCUREMENT = "C0PROCURE"


def decisions(stack, reference: str) -> list[str]:
    request = stack.store.find_requests(reference)[0]
    return [entry.event for entry in stack.store.narrative(request.id) if entry.event == Event.DECISION_RECORDED]


def clicks_by_status(stack) -> dict[str, int]:
    return dict(stack.store.conn.execute("SELECT status, COUNT(*) FROM inbox WHERE kind = 'click' GROUP BY status").fetchall())


async def test_a_click_delivered_twice_is_kept_and_counted_once_without_a_word_about_the_second(stack):
    await stack.send_order("P00045")
    card = await stack.card(PROCUREMENT, "P00045")
    button = next(e for b in card.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "handoff.approve")
    body = stack.signer.block_actions_body(stack.slack_id("dana"), "dana", card.channel, card.ts, "handoff.approve",
                                           button["value"], message=card.wire(stack.slack.workspace))

    assert (await stack.post_slack(body))[0] == 200
    assert (await stack.post_slack(body))[0] == 200
    await wait_until(lambda: stack.order_state("P00045") == "purchase", timeout=10, what="the approval in Odoo")
    await stack.settled()

    assert decisions(stack, "P00045") == [Event.DECISION_RECORDED]
    assert stack.odoo.calls["purchase.order.button_approve"] == 1
    assert clicks_by_status(stack) == {"done": 1}
    # A second delivery is nothing the person did twice: no "You already decided this stage".
    assert stack.whispers_to("dana") == []


async def test_one_stored_click_acted_on_by_two_runs_at_once_counts_once_and_is_answered_once(stack):
    """Two replicas may both hold a click when the first one's lease ran out mid-way; the click settles with its vote."""
    await stack.send_order("P00045")
    await stack.card(PROCUREMENT, "P00045")
    request = stack.store.find_requests("P00045")[0]
    clicks = stack.app[WORKER].clicks
    click = StoredClick(key="slack:replayed-click", reply_to=PROCUREMENT, action=Action(
        request_id=request.id, version=request.version, stage=0, verb=Verb.REJECT, comment="Price is above the contract.",
        actor=ChatIdentity(platform="slack", user_id=stack.slack_id("dana"))))
    inbox_id = clicks.keep(click)

    await asyncio.gather(clicks.handle(inbox_id, click), clicks.handle(inbox_id, click))
    await wait_until(lambda: stack.order_state("P00045") == "cancel", timeout=10, what="the rejection in Odoo")
    await stack.settled()

    assert decisions(stack, "P00045") == [Event.DECISION_RECORDED]
    assert stack.odoo.calls["purchase.order.button_cancel"] == 1
    assert clicks_by_status(stack) == {"done": 1}
    assert len(stack.whispers_to("dana")) == 1, stack.whispers_to("dana")
