"""A click whose database transaction is lost with its connection is counted once: at once, or once the database answers
again when the click was stored; one the database could not even store is not counted, and the person is told."""

from __future__ import annotations


from handoff.bot.app import WORKER
from handoff.bot.core.clicks import KEPT_FOR_LATER
from handoff.bot.core.errors import StoreUnavailable
from handoff.bot.core.events import Event
from handoff.bot.fakes.stack import local_stack
from handoff.bot.fakes.waiting import wait_until

PROCUREMENT = "C0PROCURE"


def lose_connection_at_votes(stack, times: int) -> None:
    """Recording a vote fails `times` times as on PostgreSQL when the connection dies mid-transaction (state/pg.py)."""
    store, record = stack.store, stack.store.add_vote
    left = [times]

    def add_vote(*args, **kwargs):
        if left[0]:
            left[0] -= 1
            raise StoreUnavailable("The PostgreSQL database is unreachable: the transaction was rolled back.", retry_after=0)
        return record(*args, **kwargs)

    store.add_vote = add_vote


def decisions(stack, reference: str) -> list[str]:
    request = stack.store.find_requests(reference)[0]
    return [entry.event for entry in stack.store.narrative(request.id) if entry.event == Event.DECISION_RECORDED]


async def test_a_click_cut_off_by_a_lost_connection_is_acted_on_once_more_and_counts_once(stack):
    await stack.send_order("P00045")
    card = await stack.card(PROCUREMENT, "P00045")
    lose_connection_at_votes(stack, times=1)

    status, _ = await stack.click("dana", card, "handoff.approve")
    assert status == 200
    await wait_until(lambda: stack.order_state("P00045") == "purchase", timeout=10, what="the approval in Odoo")
    assert decisions(stack, "P00045") == [Event.DECISION_RECORDED]
    assert stack.odoo.calls["purchase.order.button_approve"] == 1
    assert stack.whispers_to("dana") == []


async def test_a_stored_click_the_database_cuts_off_is_counted_once_it_answers_without_a_second_click(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as stack:
        await stack.send_order("P00045")
        card = await stack.card(PROCUREMENT, "P00045")
        lose_connection_at_votes(stack, times=2)

        status, _ = await stack.click("dana", card, "handoff.approve")
        assert status == 200
        told = await wait_until(lambda: stack.whispers_to("dana"), what="a word to the person who clicked")
        assert told == [KEPT_FOR_LATER]
        # The click was stored before Slack's answer: the worker acts on it again once the database answers, on
        # PostgreSQL once the clicking replica's lease on it has run out.
        clock.advance(seconds=stack.store.inbox_lease.total_seconds())
        stack.app[WORKER].wake()
        await wait_until(lambda: stack.order_state("P00045") == "purchase", timeout=10, what="the saved click's approval")
        assert decisions(stack, "P00045") == [Event.DECISION_RECORDED]
        assert stack.odoo.calls["purchase.order.button_approve"] == 1
        assert stack.whispers_to("dana") == [KEPT_FOR_LATER]


async def test_a_click_the_database_could_not_store_is_not_counted_and_the_person_is_told(stack):
    await stack.send_order("P00045")
    card = await stack.card(PROCUREMENT, "P00045")
    keep = stack.store.keep_click

    def unreachable(*args, **kwargs):
        raise StoreUnavailable("The PostgreSQL database is unreachable: the transaction was rolled back.", retry_after=0)

    stack.store.keep_click = unreachable
    lose_connection_at_votes(stack, times=2)

    status, _ = await stack.click("dana", card, "handoff.approve")
    assert status == 200
    told = await wait_until(lambda: stack.whispers_to("dana"), what="a word to the person who clicked")
    assert told == ["Handoff's database is unreachable right now, so your decision was not counted; try again in a minute."]
    assert decisions(stack, "P00045") == [] and stack.order_state("P00045") != "purchase"

    stack.store.keep_click = keep
    assert (await stack.click("dana", card, "handoff.approve"))[0] == 200
    await wait_until(lambda: stack.order_state("P00045") == "purchase", timeout=10, what="the second click's approval")
