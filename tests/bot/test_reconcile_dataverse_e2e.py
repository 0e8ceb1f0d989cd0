"""Reconciling Dataverse by change tracking, end to end over real HTTP: fake Dataverse and Slack, Handoff between them."""

from __future__ import annotations

import pytest

from handoff.bot.app import CORE, WORKER
from handoff.bot.core.events import Event
from handoff.bot.fakes.stack import local_stack
from handoff.bot.fakes.waiting import wait_until
from handoff.state import cursor_store

PROCUREMENT, OPS = "C0PROCURE", "C0OPS"
APPROVED = 100000002


@pytest.fixture
async def stack(tmp_path):
    """On the wall clock, so the outbox's per-channel pacing lets the polled orders' cards into one channel."""
    async with local_stack(tmp_path / "handoff.db", source="dataverse") as running:
        yield running


def cards_for(stack, reference: str) -> list:
    return [m for m in stack.slack.messages.get(PROCUREMENT, []) if m.thread_ts is None and reference in m.text]


def events_of(stack, reference: str) -> list[str]:
    [request] = stack.store.find_requests(reference)
    return [entry.event for entry in stack.store.narrative(request.id)]


async def test_orders_no_webhook_announced_become_cards_after_a_poll(stack):
    reconciler = stack.app[WORKER].reconciler

    assert await reconciler.tick() == 3, "the three demo orders waiting for approval"

    for reference in ("PO-000123", "PO-000124", "PO-000125"):
        card = await stack.card(PROCUREMENT, reference)
        assert f"Dataverse poll for {reference}" in str(card.blocks), "the narrative says where the request came from"
    await stack.settled()
    assert await reconciler.tick() == 0, "a second poll finds nothing new"
    status, body = await stack.send_order("PO-000124")
    assert (status, body["status"]) == (200, "accepted"), "a webhook has its own key (OperationId)..."
    await stack.settled()
    assert len(stack.store.find_requests("PO-000124")) == 1 and len(cards_for(stack, "PO-000124")) == 1, \
        "...and the open request absorbs it"


async def test_an_approval_made_in_dataverse_closes_the_card_without_writing_back(stack):
    reconciler = stack.app[WORKER].reconciler
    await stack.send_order("PO-000123")
    card = await stack.card(PROCUREMENT, "PO-000123")
    await reconciler.tick()  # the first poll reads the table and keeps its delta link
    await stack.settled()

    stack.dataverse.change("PO-000123", statuscode=APPROVED)
    assert await reconciler.tick() == 1

    await wait_until(lambda: "Decided directly in the ERP" in str(stack.slack.message(PROCUREMENT, card.ts).blocks),
                     what="the card closed")
    await stack.settled()
    assert not any(block["type"] == "actions" for block in stack.slack.message(PROCUREMENT, card.ts).blocks)
    assert Event.REQUEST_CLOSED_IN_ERP in events_of(stack, "PO-000123")
    assert stack.dataverse.patches("PO-000123") == [], "nothing is written back to a record decided in Dataverse"


async def test_the_worker_polls_dataverse_on_its_interval(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", clock=clock) as stack:
        await stack.settled()
        assert stack.slack.messages.get(PROCUREMENT, []) == [], "no poll before the first interval"

        clock.advance(seconds=stack.app[WORKER].reconciler.every.total_seconds())
        stack.app[WORKER].wake()

        # Slack's one-post-per-second pacing holds the other cards until the test clock moves: the first is proof enough.
        first = await wait_until(lambda: stack.slack.messages.get(PROCUREMENT), what="a card from the poll")
        assert "Dataverse poll" in str(first[0].blocks)


async def let_the_outbox_through(stack, clock) -> None:
    """Move the test clock a second at a time: the outbox posts one message per second per channel."""
    for _ in range(5):
        clock.advance(seconds=1)
        stack.app[CORE].wake()
        await stack.settled()


async def test_an_expired_delta_token_is_told_to_operations_once_and_a_full_read_resyncs_without_double_cards(tmp_path, clock):
    expired = "Dataverse change tracking token expired; re-syncing from a full read."
    async with local_stack(tmp_path / "handoff.db", source="dataverse", clock=clock) as stack:
        reconciler = stack.app[WORKER].reconciler
        await stack.send_order("PO-000123")
        await reconciler.tick()  # the first poll: the whole table, and a delta link per table
        await let_the_outbox_through(stack, clock)
        stale = cursor_store.get(stack.store.conn, "dataverse")
        card = await stack.card(PROCUREMENT, "PO-000123")

        # Handoff stays away longer than Dataverse keeps changes (7 days); meanwhile PO-000123 is approved there.
        clock.advance(days=8)
        stack.dataverse.change("PO-000123", statuscode=APPROVED)
        # The restart wakes the worker, whose own poll is due too and may take the change first: count neither.
        await reconciler.tick()

        def ops_told() -> list[str]:
            return [m.text for m in stack.slack.messages.get(OPS, []) if expired in m.text]

        assert await wait_until(ops_told, what="operations told of the expired token")
        await wait_until(lambda: "Decided directly in the ERP" in str(stack.slack.message(PROCUREMENT, card.ts).blocks),
                         what="the change the expired token missed, found by the full read")
        fresh = cursor_store.get(stack.store.conn, "dataverse")
        assert fresh != stale and "resync" not in fresh and "$deltatoken" in fresh, "polling goes on from new delta links"

        assert await reconciler.tick() == 0
        await let_the_outbox_through(stack, clock)
        for reference in ("PO-000123", "PO-000124", "PO-000125"):
            assert len(cards_for(stack, reference)) == 1, f"{reference} carded once, whatever the full read saw again"
        assert len(ops_told()) == 1, "told once"
        assert stack.dataverse.patches("PO-000123") == [], "nothing written back to a record decided in Dataverse"


async def test_the_resync_after_an_expired_token_re_reads_only_rows_changed_since_the_last_poll(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", clock=clock) as stack:
        reconciler, fake = stack.app[WORKER].reconciler, stack.dataverse.fake
        long_decided = fake.add_purchase_order("PO-000900", "Acme", "10.00", status=APPROVED)
        clock.advance(days=2)  # the demo orders and PO-000900 are older than a first poll's look-back
        assert await reconciler.tick() == 0

        clock.advance(days=8)  # longer than Dataverse keeps changes
        new = fake.add_purchase_order("PO-000901", "Acme", "20.00")
        await reconciler.tick()  # (the worker, woken by the restart, may poll too)
        await wait_until(lambda: stack.store.find_requests("PO-000901"), what="the order added while Handoff was away")
        await stack.settled()

        assert [stack.store.find_requests(r) for r in ("PO-000123", "PO-000124", "PO-000125")] == [[], [], []], \
            "waiting rows last modified before the expired cursor are old news, as they were to the first poll"
        reads = [path for method, path, _ in fake.requests if method == "GET" and "purchaseorders(" in path]
        assert any(new in path for path in reads) and not any(long_decided in path for path in reads), \
            "no re-read of a row decided long before the cursor"
