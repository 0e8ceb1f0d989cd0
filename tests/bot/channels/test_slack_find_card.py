"""A Slack card carries its outbox key as message metadata, and the adapter finds it again in the history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from teams_harness import make_view

from handoff.bot.channels.slack import SlackChannel
from handoff.bot.core.models import Target

CHANNEL = Target(platform="slack", kind="channel", address="C0PROC")
DM = Target(platform="slack", kind="dm", address="U0DANA", person="dana")
KEY = "post:req-1:0:slack:channel:C0PROC"


@pytest.fixture
def slack(slack_api):
    fake, client = slack_api
    return fake, SlackChannel(client)


@pytest.mark.parametrize("target", [CHANNEL, DM], ids=["channel", "dm"])
async def test_a_posted_card_is_found_by_its_key(slack, clock, target):
    fake, channel = slack
    since = clock.now() - timedelta(minutes=5)
    posted = await channel.post_card("req-1", 0, target, make_view(), key=KEY)
    await channel.post_card("req-2", 0, target, make_view(), key="post:req-2:0")

    found = await channel.find_card("req-1", 0, target, KEY, since)

    assert found == posted
    assert await channel.find_card("req-3", 0, target, "post:req-3:0", since) is None
    history_call = next(args for method, args in fake.calls if method == "conversations.history")
    assert (history_call["channel"], history_call["include_all_metadata"]) == (posted.conversation, "true")


async def test_a_card_older_than_the_window_is_not_looked_at(slack, clock):
    _, channel = slack
    await channel.post_card("req-1", 0, CHANNEL, make_view(), key=KEY)
    clock.advance(minutes=10)

    assert await channel.find_card("req-1", 0, CHANNEL, KEY, clock.now()) is None


async def test_a_card_buried_under_a_busy_channel_is_found_across_pages(slack, clock):
    fake, channel = slack
    since = clock.now() - timedelta(minutes=5)
    posted = await channel.post_card("req-1", 0, CHANNEL, make_view(), key=KEY)
    for n in range(450):
        await channel.notify(CHANNEL, f"chatter {n}")

    assert await channel.find_card("req-1", 0, CHANNEL, KEY, since) == posted
    assert [method for method, _ in fake.calls].count("conversations.history") == 3
