"""Bursts to Teams: the outbox paces each conversation within the Bot Connector's per-thread limits, which the fake enforces."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from pacing_harness import deliver_all, most_in_any_window, queue

from handoff.bot.channels.teams import TeamsChannel
from handoff.bot.core.act import Approvals
from handoff.bot.core.context import Core
from handoff.bot.core.deliver import Dispatcher
from handoff.bot.core.effects import Effects
from handoff.bot.core.enrich import build_packet
from handoff.bot.core.models import ErpRecord, PostedCard, RecordRef, Target
from handoff.bot.core.route import RouteFacts, plan_route
from handoff.bot.fakes.botconnector import FakeBotConnector
from handoff.bot.fakes.stack import SAMPLE_ROUTING
from handoff.bot.fakes.stack_teams import APP_ID, APP_PASSWORD, TENANT, teams_settings
from handoff.bot.routing_file import load_routing
from handoff.state import outbox
from handoff.state.store import Store

PROCUREMENT, FINANCE, OPS = "19:procurement@thread.tacv2", "19:finance@thread.tacv2", "19:ops@thread.tacv2"


@pytest.fixture
async def teams_world(tmp_path, clock):
    """A dispatcher posting through the real Teams adapter to a fake Bot Connector that enforces the per-thread limits."""
    # No token check: botbuilder caches its token by real time, while the fake would expire it on the simulated
    # clock, which here runs past the token's hour.
    with FakeBotConnector(APP_ID, APP_PASSWORD, tenant_id=TENANT, clock=clock, require_auth=False).serve() as connector:
        store = Store(tmp_path / "handoff.db", clock)
        core = Core(store=store, routing=load_routing(SAMPLE_ROUTING), connectors={}, clock=clock)
        approvals = Approvals(core)
        for conversation in (PROCUREMENT, FINANCE, OPS):
            connector.add_conversation(conversation)
            await store.save_conversation("teams", f"channel:{conversation}", {"serviceUrl": connector.service_url})
        channel = TeamsChannel(teams_settings(connector), store, approvals)
        try:
            yield Dispatcher(core, approvals, {"teams": channel}), connector, store
        finally:
            await channel.close()
            store.close()


def in_channel(conversation: str) -> Target:
    return Target(platform="teams", kind="channel", address=conversation)


def seconds_after(start: datetime, connector: FakeBotConnector, conversation: str) -> list[float]:
    return [(connector.sent_at[a["id"]] - start).total_seconds() for a in connector.activities[conversation]]


async def test_200_cards_to_one_conversation_go_out_at_the_per_thread_limit_without_429s_or_starving_others(
        teams_world, clock):
    dispatcher, connector, store = teams_world
    start = clock.now()
    cards_for(dispatcher.core, PROCUREMENT, 200)
    cards_for(dispatcher.core, FINANCE, 10)
    cards_for(dispatcher.core, OPS, 10)

    await deliver_all(dispatcher, store, clock, kinds=("post_card",))

    assert connector.rate_limited_count == 0
    procurement = seconds_after(start, connector, PROCUREMENT)
    assert len(procurement) == 200
    # The limit-bound minimum: 60 in any 30 s binds, so the 181st-200th go from 90 s, 8 per 2 s (7 at 0, 1 at 1, 7 at 2,
    # 1 at 3, 4 at 4): the 200th at 94 s.
    assert procurement[-1] == pytest.approx(94, abs=1)
    for other in (FINANCE, OPS):
        times = seconds_after(start, connector, other)
        # 10 at the same limits: 7 at 0, the 8th at 1, the 9th and 10th at 2 s; not after the burst's 200.
        assert len(times) == 10 and times[-1] == pytest.approx(2, abs=1), f"{other} waited behind the burst"
    cards = connector.activities[PROCUREMENT]
    # Approval cards, in the order their requests came.
    assert all(a["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive" for a in cards)
    assert all(f"PO-{n:06d}" in json.dumps(a["attachments"][0]["content"]) for n, a in enumerate(cards))
    assert outbox.depth(store.conn) == {"done": 220}


async def test_a_burst_past_1800_an_hour_waits_for_the_hour_window_and_no_longer(teams_world, clock):
    dispatcher, connector, store = teams_world
    start = clock.now()
    queue(store, clock, in_channel(PROCUREMENT), 2000)

    await deliver_all(dispatcher, store, clock)

    assert connector.rate_limited_count == 0
    times = seconds_after(start, connector, PROCUREMENT)
    assert len(times) == 2000; print("DBGC", times[990:1012], times[1500], times[1700])
    # 1800 in the first 900 s (60 every 30 s), then nothing until the first sends leave the hour window at 3600 s;
    # the last 200 then go as the first 200 did: the 2000th at 3600 + 94 s, the limit-bound minimum.
    assert times[1799] == pytest.approx(884, abs=1)
    assert times[1800] == pytest.approx(3600, abs=1)
    assert times[-1] == pytest.approx(3694, abs=1)
    assert outbox.depth(store.conn) == {"done": 2000}


def open_requests(core: Core, count: int) -> list[str]:
    """`count` open requests, ready for their cards."""
    ids = []
    with core.store.transaction():
        for n in range(count):
            record = ErpRecord(ref=RecordRef(source="dataverse", model="purchaseorder", record_id=uuid.uuid4().hex),
                               reference=f"PO-{n:06d}", state="Pending Approval", vendor="Acme Supplies",
                               amount=Decimal("1200.00"), currency="EUR")
            plan = plan_route(core.routing, RouteFacts.from_record(record))
            packet = build_packet(core.store.new_request_id(), 1, record, plan.policy_notes)
            ids.append(core.store.create_request(packet, plan, "teams", None, core.clock.now()).id)
    return ids


def cards_for(core: Core, conversation: str, count: int) -> None:
    """`count` approval cards queued for one conversation, as a burst of webhooks routed there leaves them."""
    requests = open_requests(core, count)
    with core.store.transaction() as conn:
        for request_id in requests:
            Effects(conn, core.clock.now()).post_card(request_id, 0, in_channel(conversation))


def cards_to_update(core: Core, connector: FakeBotConnector, count: int, *conversations: str) -> None:
    """`count` requests, each with a card an earlier hour posted in every one of `conversations`, each request's card
    update now queued."""
    with core.store.transaction() as conn:
        for n, request_id in enumerate(open_requests(core, count)):
            for stage, conversation in enumerate(conversations):
                connector.activities[conversation].append({"type": "message", "id": card_id(n, conversation)})
                core.store.save_card(PostedCard(request_id=request_id, stage=stage, target=in_channel(conversation),
                                                conversation=conversation, message_id=card_id(n, conversation)), core.clock.now())
            Effects(conn, core.clock.now()).update_cards(request_id)


def card_id(n: int, conversation: str) -> str:
    return f"card-{n}@{conversation}"


async def test_card_updates_share_their_conversation_s_budget_with_its_posts(teams_world, clock):
    dispatcher, connector, store = teams_world
    start = clock.now()
    cards_to_update(dispatcher.core, connector, 40, PROCUREMENT)
    queue(store, clock, in_channel(PROCUREMENT), 40)

    await deliver_all(dispatcher, store, clock, kinds=("notify", "update_cards"))

    assert connector.rate_limited_count == 0
    updated = [(connector.updated_at[card_id(n, PROCUREMENT)] - start).total_seconds() for n in range(40)]
    posted = [(connector.sent_at[a["id"]] - start).total_seconds() for a in connector.activities[PROCUREMENT] if a["id"] in connector.sent_at]
    assert len(updated) == 40 and len(posted) == 40
    # 80 operations on one conversation: 60 by 14 s, the other 20 from 30 s, the last at 34 s, the limit-bound minimum.
    assert max(updated + posted) == pytest.approx(34, abs=1)
    assert outbox.depth(store.conn) == {"done": 80}



async def test_a_429_keeps_the_hour_s_count_so_the_hour_window_draws_no_429_storm(teams_world, clock):
    dispatcher, connector, store = teams_world
    start = clock.now()
    queue(store, clock, in_channel(PROCUREMENT), 1000)
    await deliver_all(dispatcher, store, clock)
    # A 429 the pacer could not foresee (another bot's traffic in the thread); Teams sends no Retry-After.
    connector.throttle_next(1)
    queue(store, clock, in_channel(PROCUREMENT), 1)
    await deliver_all(dispatcher, store, clock)
    queue(store, clock, in_channel(PROCUREMENT), 999)

    await deliver_all(dispatcher, store, clock)

    # Only the forced one. A pacer that forgot its first 1000 after that pause ran into the hour window at 885 s and
    # met a 429 a second until the hour allowed (2,716 of them).
    assert connector.rate_limited_count == 1
    times = seconds_after(start, connector, PROCUREMENT)
    assert len(times) == 2000
    # The refused call stays counted on our side (Teams may count it too): one slot of the hour is given up, so the
    # 1800th waits for the hour window with the rest; nothing goes earlier than the hour allows.
    assert times[1798] == pytest.approx(885, abs=1) and times[1799] == pytest.approx(3600, abs=1)
    assert times[-1] == pytest.approx(3694, abs=1)


async def test_50_conversations_at_once_share_the_app_s_30_a_second_per_tenant_without_429s(teams_world, clock):
    dispatcher, connector, store = teams_world
    conversations = [f"19:team{n:02d}@thread.tacv2" for n in range(50)]
    for conversation in conversations:
        connector.add_conversation(conversation)
        await store.save_conversation("teams", f"channel:{conversation}", {"serviceUrl": connector.service_url})
        cards_for(dispatcher.core, conversation, 10)
    start = clock.now()

    await deliver_all(dispatcher, store, clock, kinds=("post_card",))

    assert connector.rate_limited_count == 0
    every = sorted(t for conversation in conversations for t in seconds_after(start, connector, conversation))
    assert len(every) == 500 and most_in_any_window(every, 1.0) == 30
    # The tenant-bound minimum: 30 in any second, so the 500th goes in the 17th second, at 16 s.
    assert every[-1] == pytest.approx(16, abs=1)
    for conversation in conversations:
        times = seconds_after(start, connector, conversation)
        assert len(times) == 10 and most_in_any_window(times, 1.0) <= 7 and most_in_any_window(times, 2.0) <= 8


async def test_a_card_edit_in_two_conversations_takes_its_slot_in_each(teams_world, clock):
    dispatcher, connector, store = teams_world
    start = clock.now()
    # 20 requests with a card in procurement and in finance, whose edits are due while finance is busy with 40 posts.
    cards_to_update(dispatcher.core, connector, 20, PROCUREMENT, FINANCE)
    queue(store, clock, in_channel(FINANCE), 40)

    await deliver_all(dispatcher, store, clock, kinds=("notify", "update_cards"))

    # Paced in procurement alone, the edits met finance's posts there: 429s.
    assert connector.rate_limited_count == 0
    edits = {c: [(connector.updated_at[card_id(n, c)] - start).total_seconds() for n in range(20)] for c in (PROCUREMENT, FINANCE)}
    posted = [(connector.sent_at[a["id"]] - start).total_seconds() for a in connector.activities[FINANCE] if a["id"] in connector.sent_at]
    assert len(posted) == 40 and edits[PROCUREMENT] == edits[FINANCE], "each request's cards edited together"
    finance = sorted(edits[FINANCE] + posted)
    assert most_in_any_window(finance, 1.0) <= 7 and most_in_any_window(finance, 2.0) <= 8
    # 60 operations on finance: the limit-bound minimum is 8 every 2 s, the 60th at 14 s.
    assert finance[-1] == pytest.approx(14, abs=1)
    assert outbox.depth(store.conn) == {"done": 60}
