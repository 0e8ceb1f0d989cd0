"""Teams outbound over real HTTP: proactive cards to channels and 1:1 chats, updates, thread replies, failures."""

from __future__ import annotations

import pytest
from teams_harness import (
    APP_ID,
    CHANNEL,
    DANA,
    PASSWORD,
    TENANT,
    channel_install,
    make_view,
    personal_install,
    settings_for,
)

from handoff.bot.channels.teams import TeamsChannel, TeamsSettings
from handoff.bot.core.errors import ChatError, ChatRateLimited, ConfigError
from handoff.bot.core.models import Target
from handoff.bot.fakes.botconnector import send_activity

IN_CHANNEL = Target(platform="teams", kind="channel", address=CHANNEL)
TO_DANA = Target(platform="teams", kind="dm", address=DANA, person="dana")


@pytest.fixture
async def installed(connector, bot_url):
    """Handoff installed by Dana in her personal scope and in the finance team, as Teams reports it."""
    for activity in (personal_install(connector), channel_install(connector)):
        status, _ = await send_activity(bot_url, activity, connector.issue_token())
        assert status == 201
    connector.add_conversation(CHANNEL)


def card_of(activity: dict) -> dict:
    [attachment] = activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


async def test_a_card_posted_to_a_channel_starts_a_new_message_there(installed, connector, channel):
    posted = await channel.post_card("req-1", 0, IN_CHANNEL, make_view())

    assert (posted.conversation, posted.target) == (CHANNEL, IN_CHANNEL)
    sent = connector.activity(CHANNEL, posted.message_id)
    assert "replyToId" not in sent
    assert card_of(sent)["body"][0]["text"] == "Approval needed: PO-000123"
    assert "userIds" not in card_of(sent)["refresh"]


async def test_a_card_for_an_approver_opens_their_1to1_chat(installed, connector, channel):
    posted = await channel.post_card("req-1", 0, TO_DANA, make_view())

    [created] = connector.created
    mri = connector.installed_for(DANA)
    assert created["isGroup"] is False
    assert created["members"] == [{"id": mri, "aadObjectId": DANA}]
    assert created["channelData"] == {"tenant": {"id": TENANT}}
    assert posted.conversation == f"a:fake-personal-{DANA}"
    assert card_of(connector.activity(posted.conversation, posted.message_id))["refresh"]["userIds"] == [mri]


async def test_update_card_replaces_the_posted_card(installed, connector, channel):
    posted = await channel.post_card("req-1", 0, IN_CHANNEL, make_view())

    await channel.update_card(posted, make_view(headline="Rejected by Dana Approver (stage 1). Dataverse updated."))

    stored = connector.activity(CHANNEL, posted.message_id)
    assert stored["updates"] == 1
    assert "Rejected by Dana Approver" in str(card_of(stored)["body"])
    assert len(connector.activities[CHANNEL]) == 1


async def test_thread_reply_answers_the_card_message(installed, connector, channel):
    posted = await channel.post_card("req-1", 0, IN_CHANNEL, make_view())

    await channel.post_thread(posted, "What changed: approved by Dana [see](http://evil)", mention=DANA)

    reply = connector.activities[CHANNEL][-1]
    assert reply["replyToId"] == posted.message_id
    assert reply["text"] == "<at>Dana Approver</at> What changed: approved by Dana \\[see\\]\\(http://evil\\)"
    assert reply["entities"][0]["mentioned"]["id"] == connector.installed_for(DANA)


async def test_notify_reaches_a_channel(installed, connector, channel):
    await channel.notify(IN_CHANNEL, "Routing failed for **PO-000123**")

    assert connector.activities[CHANNEL][-1]["text"] == "Routing failed for \\*\\*PO-000123\\*\\*"


async def test_an_approver_who_never_installed_handoff_is_a_permanent_failure_with_the_fix(connector, channel):
    with pytest.raises(ChatError) as failure:
        await channel.post_card("req-1", 0, TO_DANA, make_view())

    assert failure.value.permanent
    assert str(failure.value) == (
        "Handoff cannot reach Dana Approver in Teams: the app was never installed there. "
        "Install Handoff for Dana Approver in Teams, or add a delegate."
    )


async def test_an_approver_who_removed_handoff_is_a_permanent_failure_with_the_fix(installed, connector, channel):
    connector.installed_for(DANA, installed=False)

    with pytest.raises(ChatError) as failure:
        await channel.post_card("req-1", 0, TO_DANA, make_view())

    assert failure.value.permanent
    assert "Teams answered 403 ForbiddenOperationException" in str(failure.value)
    assert str(failure.value).endswith("Install Handoff for Dana Approver in Teams, or add a delegate.")


async def test_a_channel_handoff_is_not_in_is_a_permanent_failure(connector, channel):
    with pytest.raises(ChatError) as failure:
        await channel.post_card("req-1", 0, IN_CHANNEL, make_view())

    assert failure.value.permanent
    assert "Add the Handoff app to that team or chat" in str(failure.value)


async def test_throttling_says_when_to_retry(installed, connector, channel, clock):
    for _ in range(7):
        await channel.notify(IN_CHANNEL, "burst")

    with pytest.raises(ChatRateLimited) as throttled:
        await channel.notify(IN_CHANNEL, "one too many")
    assert throttled.value.retry_after == 1

    clock.advance(seconds=1)
    await channel.notify(IN_CHANNEL, "after waiting")
    assert connector.activities[CHANNEL][-1]["text"] == "after waiting"


async def test_multi_tenant_tokens_come_from_the_botframework_tenant(installed, connector, channel):
    await channel.notify(IN_CHANNEL, "hello")

    assert connector.token_requests == [
        {"tenant": "botframework.com", "client_id": APP_ID, "scope": "https://api.botframework.com/.default"}
    ]


async def test_single_tenant_tokens_come_from_the_bots_own_tenant(connector, directory, approvals):
    single = TeamsChannel(settings_for(connector, app_type="SingleTenant", tenant_id=TENANT), directory, approvals)

    await single.check()

    assert connector.token_requests[-1]["tenant"] == TENANT


async def test_a_wrong_password_stops_the_start_with_the_fix(connector, directory, approvals):
    wrong = TeamsChannel(settings_for(connector, app_password="not-the-secret"), directory, approvals)

    with pytest.raises(ConfigError) as failure:
        await wrong.check()

    assert "Microsoft refused Handoff's Teams credentials (invalid_client)" in str(failure.value)
    assert "not-the-secret" not in str(failure.value)


@pytest.mark.parametrize(("fields", "fix"), [
    ({"app_password": PASSWORD, "app_type": "SingleTenant"}, "set HANDOFF_TEAMS__TENANT_ID"),
    ({}, "set HANDOFF_TEAMS__APP_PASSWORD"),
])
def test_incomplete_settings_are_refused_with_the_fix(fields, fix):
    with pytest.raises(ValueError, match=fix):
        TeamsSettings(app_id=APP_ID, **fields)
