"""Teams over real HTTP: inbound turns and outbound posts share one Bot Connector client; tokens still checked each time."""

from __future__ import annotations

import pytest
from botframework.connector.auth import _connector_factory_impl, _parameterized_bot_framework_authentication
from teams_harness import CHANNEL, card_invoke, channel_install, make_view, personal_install

from handoff.bot.core.models import Target
from handoff.bot.fakes.botconnector import send_activity

BINDING = {"r": "req-1", "v": 3, "s": 0}


@pytest.fixture
def built(monkeypatch) -> dict[str, int]:
    """How many connector and user-token clients botbuilder constructed (each costs the event loop several ms)."""
    counts = {"connector": 0, "user_token": 0}

    def counting(kind: str, cls: type) -> type:
        class Counted(cls):
            def __init__(self, *args, **kwargs) -> None:
                counts[kind] += 1
                super().__init__(*args, **kwargs)
        return Counted

    monkeypatch.setattr(_connector_factory_impl, "ConnectorClient", counting("connector", _connector_factory_impl.ConnectorClient))
    monkeypatch.setattr(_parameterized_bot_framework_authentication, "_UserTokenClientImpl",
                        counting("user_token", _parameterized_bot_framework_authentication._UserTokenClientImpl))
    return counts


async def test_clicks_and_posts_build_one_client_per_service_url(connector, bot_url, channel, built):
    for activity in (personal_install(connector), channel_install(connector)):
        assert (await send_activity(bot_url, activity, connector.issue_token()))[0] == 201
    connector.add_conversation(CHANNEL)
    for _ in range(3):
        status, body = await send_activity(bot_url, card_invoke(connector, "handoff.approve", BINDING), connector.issue_token())
        assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    posted = await channel.post_card("req-1", 0, Target(platform="teams", kind="channel", address=CHANNEL), make_view())
    await channel.update_card(posted, make_view("Approved"))

    assert connector.activity(posted.conversation, posted.message_id) is not None
    assert built == {"connector": 1, "user_token": 1}


async def test_a_bad_token_is_refused_after_good_ones_were_served(connector, bot_url, directory):
    assert (await send_activity(bot_url, personal_install(connector), connector.issue_token()))[0] == 201

    status, _ = await send_activity(bot_url, channel_install(connector), connector.issue_token(expired=True))

    assert status == 401
    assert not any(key.startswith("channel:") for _, key in directory.references)
