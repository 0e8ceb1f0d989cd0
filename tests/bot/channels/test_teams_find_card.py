"""A Teams card hides its outbox key; with Graph read on, the adapter finds it again in a channel or group chat."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from aiohttp import web
from teams_harness import DANA, TENANT, MemoryDirectory, StubApprovals, channel_install, make_view, personal_install

from handoff.bot.channels.teams import TeamsChannel, teams_routes
from handoff.bot.core.errors import ChatError, ChatRateLimited
from handoff.bot.core.models import Target
from handoff.bot.fakes.botconnector import send_activity
from handoff.bot.fakes.stack_teams import teams_fakes, teams_settings
from handoff.cards import adaptive

TEAM_GROUP = "02ce3874-dd86-41ba-bddc-013f34019978"
CHANNEL_ID = "19:finance-approvals@thread.tacv2"
GROUP_CHAT = "19:2da4c29f6d7041eca70b638b43d45437@thread.v2"
CHANNEL = Target(platform="teams", kind="channel", address=CHANNEL_ID)
CHAT = Target(platform="teams", kind="channel", address=GROUP_CHAT)
DM = Target(platform="teams", kind="dm", address=DANA, person="dana")
KEY = f"post:req-1:0:teams:channel:{CHANNEL_ID}"


@pytest.fixture
def fakes(clock):
    with teams_fakes(clock) as running:
        yield running


async def _installed(aiohttp_server, fakes, graph_read: bool = True, consent: bool = True) -> TeamsChannel:
    """Handoff's Teams adapter, installed (over HTTP, as Teams reports it) in a team channel, a group chat and Dana's 1:1."""
    connector, _, graph = fakes
    teams = TeamsChannel(teams_settings(connector, graph_read=graph_read), MemoryDirectory(), StubApprovals())
    app = web.Application()
    app.add_routes(teams_routes(teams))
    url = str((await aiohttp_server(app)).make_url("/api/messages"))
    in_team = channel_install(connector)
    # msteams-docs subscribe-to-conversation-events.md: the bot added to a team carries the team's AAD group id.
    in_team["channelData"]["team"]["aadGroupId"] = TEAM_GROUP
    in_chat = channel_install(connector)
    in_chat["conversation"] = {"conversationType": "groupChat", "tenantId": TENANT, "isGroup": True, "id": GROUP_CHAT}
    in_chat["channelData"] = {"tenant": {"id": TENANT}}
    for activity in (in_team, in_chat, personal_install(connector)):
        assert (await send_activity(url, activity, connector.issue_token()))[0] == 201
    for conversation in (CHANNEL_ID, GROUP_CHAT):
        connector.add_conversation(conversation)
    if consent:
        graph.consent(CHANNEL_ID, team=TEAM_GROUP)
        graph.consent(GROUP_CHAT)
    return teams


@pytest.fixture
async def teams(aiohttp_server, fakes):
    channel = await _installed(aiohttp_server, fakes)
    yield channel
    await channel.close()


@pytest.mark.parametrize("target", [CHANNEL, CHAT], ids=["team channel", "group chat"])
async def test_a_posted_card_is_found_by_its_key_through_graph(teams, fakes, clock, target):
    _, _, graph = fakes
    since = clock.now() - timedelta(minutes=5)
    posted = await teams.post_card("req-1", 0, target, make_view(), key=KEY)
    await teams.post_card("req-2", 0, target, make_view(), key="post:req-2:0")
    await teams.notify(target, "a line of chatter")

    assert await teams.find_card("req-1", 0, target, KEY, since) == posted
    assert await teams.find_card("req-3", 0, target, "post:req-3:0", since) is None
    path, query = graph.reads[0]
    if target is CHANNEL:
        assert (path, query) == (f"/graph/v1.0/teams/{TEAM_GROUP}/channels/{CHANNEL_ID}/messages", {"$top": "50"})
    else:
        assert path == f"/graph/v1.0/chats/{GROUP_CHAT}/messages"
        assert query["$orderby"] == "lastModifiedDateTime desc"
        assert query["$filter"] == f"lastModifiedDateTime gt {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"


async def test_the_key_is_hidden_in_the_card_not_shown(teams, fakes):
    connector, _, _ = fakes
    posted = await teams.post_card("req-1", 0, CHANNEL, make_view(), key=KEY)
    card = connector.activity(CHANNEL_ID, posted.message_id)["attachments"][0]["content"]

    assert adaptive.card_key(card) == KEY
    assert KEY not in " ".join(str(e.get("text", "")) for e in card["body"])


@pytest.mark.parametrize("target", [CHANNEL, CHAT], ids=["team channel", "group chat"])
async def test_a_card_from_before_the_window_is_not_adopted(teams, clock, target):
    await teams.post_card("req-1", 0, target, make_view(), key=KEY)
    clock.advance(minutes=10)

    assert await teams.find_card("req-1", 0, target, KEY, clock.now()) is None


async def test_a_card_buried_under_a_busy_channel_is_found_across_pages(teams, clock):
    since = clock.now() - timedelta(minutes=5)
    posted = await teams.post_card("req-1", 0, CHANNEL, make_view(), key=KEY)
    for n in range(120):
        clock.advance(seconds=1)
        await teams.post_card(f"req-{n + 2}", 0, CHANNEL, make_view(), key=f"post:req-{n + 2}:0")

    assert await teams.find_card("req-1", 0, CHANNEL, KEY, since) == posted


async def test_without_consent_the_look_up_finds_nothing_and_logs_the_fix(aiohttp_server, fakes, clock, caplog):
    teams = await _installed(aiohttp_server, fakes, consent=False)
    await teams.post_card("req-1", 0, CHANNEL, make_view(), key=KEY)

    with caplog.at_level(logging.WARNING):
        assert await teams.find_card("req-1", 0, CHANNEL, KEY, clock.now() - timedelta(minutes=5)) is None
    await teams.close()

    [refused] = [r for r in caplog.records if r.getMessage() == "card.lookup_refused"]
    assert (refused.status, refused.code) == ("403", "accessDenied")
    assert "resource-specific consent" in refused.fix


async def test_a_1_to_1_chat_is_not_looked_up(teams, fakes, clock):
    _, _, graph = fakes
    await teams.post_card("req-1", 0, DM, make_view(), key=KEY)

    assert await teams.find_card("req-1", 0, DM, KEY, clock.now() - timedelta(minutes=5)) is None
    assert graph.reads == []


async def test_with_graph_read_off_nothing_is_read(aiohttp_server, fakes, clock):
    _, _, graph = fakes
    teams = await _installed(aiohttp_server, fakes, graph_read=False)
    await teams.post_card("req-1", 0, CHANNEL, make_view(), key=KEY)

    assert await teams.find_card("req-1", 0, CHANNEL, KEY, clock.now() - timedelta(minutes=5)) is None
    assert graph.reads == []
    await teams.close()


async def test_throttling_waits_for_retry_after_and_an_outage_retries_the_item(teams, fakes, clock):
    """Unlike a refusal, these say nothing about the card: the look-up is asked again, never skipped for a second post."""
    _, _, graph = fakes
    graph.failures += [(429, "7"), (503, None)]
    since = clock.now() - timedelta(minutes=5)

    with pytest.raises(ChatRateLimited) as throttled:
        await teams.find_card("req-1", 0, CHANNEL, KEY, since)
    with pytest.raises(ChatError) as outage:
        await teams.find_card("req-1", 0, CHANNEL, KEY, since)

    assert throttled.value.retry_after == 7
    assert not outage.value.permanent and "503" in str(outage.value)
