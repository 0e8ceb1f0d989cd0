"""Bursts under platform limits: the outbox paces each destination, against a fake Slack that answers 429 as Slack does."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pacing_harness import deliver_all, most_in_any_window, queue
from slack_sdk.web.async_client import AsyncWebClient

from handoff.bot.channels.slack import SlackChannel
from handoff.bot.core.act import Approvals
from handoff.bot.core.context import Core
from handoff.bot.core.deliver import Dispatcher
from handoff.bot.core.models import Target
from handoff.bot.core.pacing import Pacer
from handoff.bot.fakes.slack import FakeSlack, Limit, RateLimits
from handoff.bot.fakes.stack import SAMPLE_ROUTING
from handoff.bot.routing_file import load_routing
from handoff.state import outbox
from handoff.state.store import Store

PROCUREMENT, FINANCE, OPS = "C0PROCURE", "C0FINANCE", "C0OPS"


@pytest.fixture
async def slack_world(tmp_path, clock, aiohttp_server):
    """A dispatcher posting to a fake Slack that enforces one chat.postMessage per second per channel."""

    async def build(pacer: Pacer | None = None) -> tuple[Dispatcher, FakeSlack, Store]:
        slack = FakeSlack(clock=clock, rate_limits=RateLimits(post_per_channel=Limit(1, 1.0)))
        for channel in (PROCUREMENT, FINANCE, OPS):
            slack.add_channel(channel, channel.lower())
        server = await aiohttp_server(slack.app)
        store = Store(tmp_path / "handoff.db", clock)
        stores.append(store)
        core = Core(store=store, routing=load_routing(SAMPLE_ROUTING), connectors={}, clock=clock)
        client = AsyncWebClient(token=slack.token, base_url=str(server.make_url("/api/")))
        return Dispatcher(core, Approvals(core), {"slack": SlackChannel(client)}, pacer=pacer), slack, store

    stores: list[Store] = []
    yield build
    for store in stores:
        store.close()


def in_channel(channel: str) -> Target:
    return Target(platform="slack", kind="channel", address=channel)


def seconds_after(start: datetime, slack: FakeSlack, channel: str) -> list[float]:
    return [float(m.ts) - start.timestamp() for m in slack.messages[channel]]


async def test_a_burst_of_200_to_one_channel_goes_out_at_the_limit_without_429s_or_starving_others(slack_world, clock):
    dispatcher, slack, store = await slack_world()
    start = clock.now()
    queue(store, clock, in_channel(PROCUREMENT), 200)
    queue(store, clock, in_channel(FINANCE), 10)
    queue(store, clock, in_channel(OPS), 10)

    await deliver_all(dispatcher, store, clock)

    assert slack.rate_limited_count == 0
    procurement = seconds_after(start, slack, PROCUREMENT)
    assert len(procurement) == 200
    # The limit-bound minimum for 200 posts at one per second is 199 s after the first.
    assert procurement[-1] == pytest.approx(199, abs=1)
    for other in (FINANCE, OPS):
        times = seconds_after(start, slack, other)
        assert len(times) == 10 and times[-1] == pytest.approx(9, abs=1), f"{other} waited behind the burst"
    assert [m.text for m in slack.messages[PROCUREMENT]] == [f"{PROCUREMENT} message {n}" for n in range(200)]
    assert outbox.depth(store.conn) == {"done": 220}


async def test_a_429_pauses_only_its_destination_and_costs_no_attempt(slack_world, clock):
    # No pacing of our own: the fake's 429 + Retry-After is all the dispatcher has to go on.
    dispatcher, slack, store = await slack_world(Pacer(limits={}))
    start = clock.now()
    queue(store, clock, in_channel(PROCUREMENT), 5)
    queue(store, clock, in_channel(OPS), 1)

    await dispatcher.drain()
    # One 429 for the second procurement post; the rest of that channel waits out Retry-After without asking again,
    # while the operations channel, which Slack did not limit, gets its message at once.
    assert slack.rate_limited_count == 1
    assert seconds_after(start, slack, OPS) == [pytest.approx(0, abs=0.01)]
    assert len(slack.messages[PROCUREMENT]) == 1

    await deliver_all(dispatcher, store, clock)
    assert len(slack.messages[PROCUREMENT]) == 5
    assert outbox.depth(store.conn) == {"done": 6}
    assert all(item.attempts == 1 for item in outbox.items(store.conn))


def slots(pacer: Pacer, destination: str, count: int, start: datetime) -> list[float]:
    return [(pacer.reserve(destination, start, f"item-{n}") - start).total_seconds() for n in range(count)]


def test_teams_sends_stay_within_every_per_thread_window(clock):
    times = slots(Pacer(), "teams.post:19:procurement@thread.tacv2", 1900, clock.now())
    for window, allowed in ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800)):
        assert most_in_any_window(times, window) == allowed, f"over {allowed} in {window:g} s"
    # 60 in 30 s binds a burst: 8 every 2 s until 60 (the 60th at 14 s), then the next 60 from 30 s; the 200th is the
    # 20th of the fourth run (7 at 0, 1 at 1, 7 at 2, 1 at 3, the 17th-20th at 4), at 94 s, the limit-bound minimum.
    assert times[199] == 94
    assert times[1800] == 3600, "the 1801st waits for the hour window to slide, not longer"


def test_a_month_end_wave_of_5000_dataverse_requests_fits_in_one_window(clock):
    pacer = Pacer()
    times = slots(pacer, "erp.dataverse", 6001, clock.now())
    assert times[:6000] == [0.0] * 6000, "5,000 requests are under the 6,000 per 5 minutes: none waits"
    assert times[6000] == 300.0


def test_destinations_are_paced_apart(clock):
    pacer, now = Pacer(), clock.now()
    assert pacer.reserve("slack.post:C0PROCURE", now, "a") == now
    assert pacer.reserve("slack.post:C0PROCURE", now, "b") == now + timedelta(seconds=1)
    assert pacer.reserve("slack.post:C0OPS", now, "c") == now
    # The item holding a slot gets it when it comes back at that time, without taking a second one.
    assert pacer.reserve("slack.post:C0PROCURE", now + timedelta(seconds=1), "b") == now + timedelta(seconds=1)
    assert pacer.reserve("slack.post:C0PROCURE", now + timedelta(seconds=1), "d") == now + timedelta(seconds=2)
