"""Odoo down for minutes: webhooks still accepted, people told since when, and everything resumes by itself."""

from __future__ import annotations

from datetime import datetime

import pytest

from handoff.bot.app import CORE, WORKER
from handoff.bot.core.events import Event
from handoff.bot.fakes.stack import button_binding, local_stack
from handoff.bot.fakes.waiting import wait_until
from handoff.state import outbox

PROCUREMENT, OPS = "C0PROCURE", "C0OPS"


async def no_wait(seconds: float) -> None:
    """Enrichment's backoff sleeps, injected away: the test moves the clock instead."""


@pytest.fixture
async def stack(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as running:
        running.app[CORE].sleep = no_wait
        yield running


def next_second(stack, clock) -> None:
    """Let a second pass: posts to one Slack channel are paced at one per second."""
    clock.advance(seconds=1.5)
    stack.app[WORKER].wake()


def ops_texts(stack) -> list[str]:
    return [m.text for m in stack.slack.messages[OPS]]


async def test_orders_that_arrive_while_odoo_is_down_reach_people_and_complete_when_it_is_back(stack, clock):
    stack.odoo.down = True
    since = clock.now().strftime("%H:%M")
    for reference in ("P00043", "P00045"):
        status, body = await stack.send_order(reference)
        assert (status, body["status"]) == (200, "accepted")
    cards = [await stack.card(PROCUREMENT, "P00043", timeout=10)]
    next_second(stack, clock)
    cards.append(await stack.card(PROCUREMENT, "P00045", timeout=10))
    for card in cards:
        assert f"Odoo unreachable since {since} UTC, retrying: it could not be read" in str(card.blocks)
    await stack.settled()
    down_notices = [t for t in ops_texts(stack) if "unreachable since" in t]
    assert len(down_notices) == 1, "one notice per outage, not one per order"
    assert down_notices[0].startswith(f"Odoo unreachable since {since} UTC, retrying. Webhooks are still accepted")

    stack.odoo.down = False
    clock.advance(seconds=31)
    stack.app[WORKER].wake()
    for card in cards:
        complete = await wait_until(
            lambda: button_binding(stack.slack.message(PROCUREMENT, card.ts), "handoff.approve")["v"] == 2
            and stack.slack.message(PROCUREMENT, card.ts), timeout=10, what="the card re-read from Odoo")
        assert "unreachable" not in str(complete.blocks)
    assert "Cordless drill 18V" in str(stack.slack.message(PROCUREMENT, cards[1].ts).blocks)
    await wait_until(lambda: any(t.startswith(f"Odoo answers again (unreachable since {since} UTC)") for t in ops_texts(stack)),
                     what="the all-clear in operations")


async def test_a_write_back_during_an_outage_is_kept_said_and_retried_until_it_lands(stack, clock):
    await stack.send_order("P00043")
    card = await stack.card(PROCUREMENT, "P00043")
    stack.odoo.fail_method("button_approve", count=3, status=503)
    await stack.click("erik", card, "handoff.approve")
    await wait_until(lambda: [i for i in outbox.items(stack.store.conn, "pending") if i.kind == "erp_write" and i.last_error],
                     what="the first failed write-back attempt")
    since = clock.now()
    next_second(stack, clock)
    told = await wait_until(lambda: stack.slack.thread_replies(PROCUREMENT, card.ts), what="the thread notice")
    assert told[0].text.startswith(f"Odoo unreachable since {since:%H:%M} UTC, retrying: the decision is kept")
    order = stack.odoo.db.records["purchase.order"][stack.orders["P00043"]]
    for _ in range(10):
        if order["state"] == "purchase":
            break
        clock.advance(minutes=6)  # past the longest backoff step
        stack.app[WORKER].wake()
        await stack.settled(timeout=10)
    assert order["state"] == "purchase"
    assert stack.odoo.calls["purchase.order.button_approve"] == 1, "three 503s, then the one write that landed"
    await stack.settled()
    replies = [m.text for m in stack.slack.thread_replies(PROCUREMENT, card.ts)]
    assert sum("unreachable" in r for r in replies) == 1, "said once, not on every retry"
    request = stack.store.find_requests("P00043")[0]
    assert [e.event for e in stack.store.narrative(request.id)][-2:] == [Event.ERP_UPDATED, Event.REQUEST_COMPLETED]


@pytest.mark.parametrize("retry_after", [30, None], ids=["with-retry-after", "without"])
async def test_a_429_from_odoo_pauses_the_write_back_without_spending_an_attempt_or_saying_odoo_is_down(stack, clock, retry_after):
    await stack.send_order("P00043")
    card = await stack.card(PROCUREMENT, "P00043")
    # What a reverse proxy or odoo.sh in front of Odoo answers when it throttles; Odoo itself has no rate limiter.
    stack.odoo.fail_method("button_approve", count=1, status=429, retry_after=retry_after)
    clicked = clock.now()
    await stack.click("erik", card, "handoff.approve")

    # A claimed item is pending too, until its lease; a paused one has given its claim back.
    [paused] = await wait_until(lambda: [i for i in outbox.items(stack.store.conn, "pending")
                                         if i.kind == "erp_write" and i.claims == 0 and datetime.fromisoformat(i.next_at) > clicked],
                                what="the write-back paused by the 429")
    # Odoo asked for a pause: no attempt spent, nothing said to the approvers, Odoo not marked down.
    assert paused.attempts == 0 and paused.last_error is None
    waited = (datetime.fromisoformat(paused.next_at) - clicked).total_seconds()
    assert waited == pytest.approx(30, abs=1) if retry_after else 0 < waited <= 2
    await stack.settled()
    assert not [m for m in stack.slack.thread_replies(PROCUREMENT, card.ts) if "unreachable" in m.text]
    assert not [t for t in ops_texts(stack) if "unreachable" in t]

    clock.at = datetime.fromisoformat(paused.next_at)
    stack.app[WORKER].wake()
    order = stack.odoo.db.records["purchase.order"][stack.orders["P00043"]]
    await wait_until(lambda: order["state"] == "purchase", what="the write-back after the pause")
    assert stack.odoo.calls["purchase.order.button_approve"] == 1, "the refused call, then the one that landed"
    [done] = [i for i in outbox.items(stack.store.conn) if i.kind == "erp_write"]
    assert (done.status, done.attempts) == ("done", 1)
