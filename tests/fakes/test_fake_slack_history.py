"""The fake's conversations.history and message metadata answer as Slack documents them, to the real SDK."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

CARD = {"event_type": "handoff_card", "event_payload": {"key": "post:r1:0"}}


async def test_history_is_newest_first_and_carries_metadata_only_when_asked(slack_api):
    _, client = slack_api
    first = await client.chat_postMessage(channel="C0PROC", text="card", metadata=CARD)
    second = await client.chat_postMessage(channel="C0PROC", text="plain")
    await client.chat_postMessage(channel="C0PROC", text="reply", thread_ts=first["ts"])

    plain = await client.conversations_history(channel="C0PROC")
    full = await client.conversations_history(channel="C0PROC", include_all_metadata=True)

    assert [m["ts"] for m in plain["messages"]] == [second["ts"], first["ts"]], "thread replies stay in their thread"
    assert (plain["ok"], plain["has_more"]) == (True, False)
    assert "metadata" not in plain["messages"][1]
    assert full["messages"][1]["metadata"] == CARD
    assert "metadata" not in full["messages"][0]


async def test_oldest_and_latest_bound_the_window_exclusively(slack_api, clock):
    _, client = slack_api
    early = await client.chat_postMessage(channel="C0PROC", text="early")
    clock.advance(seconds=10)
    middle = await client.chat_postMessage(channel="C0PROC", text="middle")
    clock.advance(seconds=10)
    await client.chat_postMessage(channel="C0PROC", text="late")

    window = await client.conversations_history(channel="C0PROC", oldest=early["ts"], latest=str(float(middle["ts"]) + 5))
    inclusive = await client.conversations_history(channel="C0PROC", oldest=early["ts"], latest=middle["ts"], inclusive=True)

    assert [m["text"] for m in window["messages"]] == ["middle"]
    assert [m["text"] for m in inclusive["messages"]] == ["middle", "early"]


async def test_a_long_history_comes_in_pages_joined_by_the_cursor(slack_api):
    _, client = slack_api
    for n in range(5):
        await client.chat_postMessage(channel="C0PROC", text=f"m{n}")

    first = await client.conversations_history(channel="C0PROC", limit=2)
    second = await client.conversations_history(channel="C0PROC", limit=2, cursor=first["response_metadata"]["next_cursor"])
    last = await client.conversations_history(channel="C0PROC", limit=2, cursor=second["response_metadata"]["next_cursor"])

    assert [[m["text"] for m in page["messages"]] for page in (first, second, last)] == [["m4", "m3"], ["m2", "m1"], ["m0"]]
    assert [page["has_more"] for page in (first, second, last)] == [True, True, False]
    assert "response_metadata" not in last.data


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"channel": "procurement"}, "channel_not_found"),  # an id, not a name
        ({"channel": "C0PROC", "oldest": "yesterday"}, "invalid_ts_oldest"),
        ({"channel": "C0PROC", "cursor": "not-a-cursor"}, "invalid_cursor"),
    ],
)
async def test_history_refuses_what_slack_refuses(slack_api, arguments, error):
    _, client = slack_api
    with pytest.raises(SlackApiError) as refused:
        await client.conversations_history(**arguments)
    assert refused.value.response["error"] == error


@pytest.mark.parametrize(
    ("metadata", "error"),
    [({"event_type": "handoff_card"}, "invalid_metadata_schema"), ("[1, 2]", "invalid_metadata_format")],
)
async def test_post_message_refuses_metadata_without_its_two_fields(slack_api, metadata, error):
    fake, client = slack_api
    with pytest.raises(SlackApiError) as refused:
        await client.api_call("chat.postMessage", json={"channel": "C0PROC", "text": "card", "metadata": metadata})
    assert refused.value.response["error"] == error
    assert fake.messages["C0PROC"] == []
