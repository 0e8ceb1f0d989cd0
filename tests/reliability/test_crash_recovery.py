"""kill -9 at each step of the flow, restart on the same database: nothing lost, nothing done twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from crash_harness import KILLED

from handoff.bot.core.events import Event
from handoff.bot.fakes.waiting import wait_until
from handoff.state import decision_log

PROCUREMENT = "C0PROCURE"


def events(database: Path, reference: str) -> list[str]:
    with sqlite3.connect(database) as conn:
        return [row[0] for row in conn.execute(
            "SELECT event FROM decision_log WHERE request_id IN (SELECT id FROM requests WHERE reference = ?) ORDER BY seq",
            (reference,))]


def settled(database: Path) -> bool:
    """Nothing waiting in the inbox or the outbox, and nothing dead."""
    with sqlite3.connect(database) as conn:
        inbox = conn.execute("SELECT COUNT(*) FROM inbox WHERE status = 'pending'").fetchone()[0]
        outbox = conn.execute("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'dead')").fetchone()[0]
    return inbox == 0 and outbox == 0


def chain_ok(database: Path) -> bool:
    with sqlite3.connect(database) as conn:
        return decision_log.verify(conn).ok


@pytest.mark.parametrize("point", ["after_ingest", "after_route"])
async def test_a_crash_before_the_card_is_posted_still_posts_it_once(handoff, point):
    await handoff.start(crash_at=point)
    answered = await handoff.send_order("P00043")
    assert await handoff.died() == KILLED
    # after_ingest dies before answering: Odoo saw no 200. The event was stored first, so it is not lost.
    assert answered == (None if point == "after_ingest" else 200)

    await handoff.start()
    await wait_until(lambda: handoff.fakes.cards(PROCUREMENT, "P00043"), timeout=20, what="the card after restart")
    # A sender that retries an unanswered webhook gets "duplicate", never a second request.
    assert await handoff.send_order("P00043") == 200
    await wait_until(lambda: settled(handoff.database), timeout=20, what="the queues to drain")

    assert len(handoff.fakes.cards(PROCUREMENT, "P00043")) == 1
    assert "conversations.history" not in [method for method, _ in handoff.fakes.slack.calls], "a first claim just posts"
    assert events(handoff.database, "P00043").count(Event.REQUEST_RECEIVED) == 1
    assert events(handoff.database, "P00043").count(Event.CARD_POSTED) == 1
    assert chain_ok(handoff.database)


async def test_a_crash_between_slacks_answer_and_our_bookkeeping_adopts_the_card_instead_of_reposting(handoff):
    """The card carries its outbox key as metadata; the retry finds it in conversations.history and keeps it."""
    await handoff.start(crash_at="mid_post")
    assert await handoff.send_order("P00043") == 200
    assert await handoff.died() == KILLED
    assert len(handoff.fakes.cards(PROCUREMENT, "P00043")) == 1, "Slack had the card when the process died"

    await handoff.start()
    await wait_until(lambda: settled(handoff.database), timeout=20, what="the queues to drain")
    [card] = handoff.fakes.cards(PROCUREMENT, "P00043")
    assert card.metadata["event_type"] == "handoff_card"
    assert events(handoff.database, "P00043").count(Event.CARD_POSTED) == 1
    # The adopted card is the one Handoff knows: a click on it counts, once, and the thread lands under it.
    assert await handoff.click("erik", card, "handoff.approve") == 200
    await wait_until(lambda: handoff.fakes.odoo.db.records["purchase.order"][handoff.fakes.orders["P00043"]]["state"] == "purchase",
                     timeout=20, what="the approval from the card")
    await wait_until(lambda: handoff.fakes.slack.thread_replies(PROCUREMENT, card.ts), timeout=20, what="the thread reply")
    assert handoff.fakes.odoo.calls["purchase.order.button_approve"] == 1
    assert len(handoff.fakes.cards(PROCUREMENT, "P00043")) == 1


async def restart_until_approved_once(handoff) -> None:
    """Start again and wait for P00043 to be approved in Odoo and completed: one decision, one write-back."""
    fakes = handoff.fakes
    await handoff.start()
    order = fakes.odoo.db.records["purchase.order"][fakes.orders["P00043"]]
    await wait_until(lambda: order["state"] == "purchase", timeout=20, what="the approval in Odoo")
    await wait_until(lambda: settled(handoff.database), timeout=20, what="the queues to drain")
    await wait_until(lambda: Event.REQUEST_COMPLETED in events(handoff.database, "P00043"), timeout=20, what="the request to complete")

    assert fakes.odoo.calls["purchase.order.button_approve"] == 1
    logged = events(handoff.database, "P00043")
    assert [logged.count(e) for e in (Event.DECISION_RECORDED, Event.ERP_UPDATED, Event.REQUEST_COMPLETED)] == [1, 1, 1]


@pytest.mark.parametrize("point", ["after_click", "mid_write_back"])
async def test_a_crash_after_the_decision_writes_it_back_exactly_once(handoff, point):
    fakes = handoff.fakes
    await handoff.start(crash_at=point)
    assert await handoff.send_order("P00043") == 200
    card = await wait_until(lambda: next(iter(fakes.cards(PROCUREMENT, "P00043")), None), timeout=20, what="the card")
    await handoff.click("erik", card, "handoff.approve")
    assert await handoff.died() == KILLED
    if point == "mid_write_back":
        assert fakes.odoo.calls["purchase.order.button_approve"] == 1, "Odoo had the approval when the process died"

    await restart_until_approved_once(handoff)
    assert len(fakes.cards(PROCUREMENT, "P00043")) == 1
    assert chain_ok(handoff.database)


async def test_a_crash_after_slacks_answer_to_a_click_still_decides_it_once(handoff):
    """Slack had its 200, so it never resends the click: the click was stored before the answer, and the restart decides it."""
    fakes = handoff.fakes
    await handoff.start(crash_at="after_ack")
    assert await handoff.send_order("P00043") == 200
    card = await wait_until(lambda: next(iter(fakes.cards(PROCUREMENT, "P00043")), None), timeout=20, what="the card")
    assert await handoff.click("erik", card, "handoff.approve") == 200, "Slack got its answer before the process died"
    assert await handoff.died() == KILLED
    assert Event.DECISION_RECORDED not in events(handoff.database, "P00043"), "the process died before deciding"

    await restart_until_approved_once(handoff)
    [shown] = fakes.cards(PROCUREMENT, "P00043")
    assert shown.updates, "the card was updated in place"
    assert "handoff.approve" not in str(shown.blocks), "the decided card offers no buttons"
    assert chain_ok(handoff.database)
