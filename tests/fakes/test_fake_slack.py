"""The fake Slack answers what the real Web API answers, to the real SDK, over real HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from handoff.bot.fakes.slack import TIERS, FakeSlack, Limit, RateLimits, SlackSigner
from handoff.cards.blockkit import reject_modal

TOKEN = "xoxb-test-token"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "slack"
SLACK_TS = re.compile(r"^\d{10}\.\d{6}$")


def section(text: str, block_id: str | None = None) -> dict:
    block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    return {**block, "block_id": block_id} if block_id else block


@pytest.fixture
def make_slack(aiohttp_server, clock):
    """Start a fake on loopback; returns (fake, client) with a channel and two users known."""

    async def start(rate_limits: RateLimits | None = None, token: str | None = TOKEN):
        fake = FakeSlack(TOKEN, clock=clock, rate_limits=rate_limits)
        fake.add_channel("C0PROC", "procurement")
        fake.add_channel("C0FIN", "finance")
        fake.add_user("U0DANA", "dana")
        fake.add_user("U0SAM", "sam")
        server = await aiohttp_server(fake.app)
        return fake, AsyncWebClient(token=token, base_url=str(server.make_url("/api/")))

    return start


async def refused(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        await call
    return raised.value


@pytest.mark.parametrize(("token", "error"), [(None, "not_authed"), ("xoxb-wrong", "invalid_auth")])
async def test_bad_credentials_are_refused_with_http_200(make_slack, token, error):
    _, client = await make_slack(token=token)

    failure = await refused(client.auth_test())

    assert (failure.response.status_code, failure.response["ok"], failure.response["error"]) == (200, False, error)


async def test_auth_test_names_the_bot_and_team(make_slack):
    _, client = await make_slack()

    answer = await client.auth_test()

    assert {k: answer[k] for k in ("team_id", "user_id", "bot_id")} == {
        "team_id": "T01HANDOFF", "user_id": "U05HANDOFFBOT", "bot_id": "B05HANDOFF1"}
    assert answer["url"] == "https://handoff-demo.slack.com/"


async def test_post_message_returns_the_message_key_and_keeps_the_message(make_slack):
    fake, client = await make_slack()
    blocks = [section("*P00042*", "handoff.headline")]

    first = await client.chat_postMessage(channel="C0PROC", text="Approval needed: P00042", blocks=blocks)
    second = await client.chat_postMessage(channel="#procurement", text="another")

    assert first["channel"] == second["channel"] == "C0PROC"
    assert SLACK_TS.match(first["ts"]) and float(second["ts"]) > float(first["ts"])
    assert first["message"]["blocks"] == blocks and first["message"]["ts"] == first["ts"]
    kept = fake.message("C0PROC", first["ts"])
    assert (kept.text, kept.blocks, kept.thread_ts) == ("Approval needed: P00042", blocks, None)
    assert [m for m, _ in fake.calls] == ["chat.postMessage", "chat.postMessage"]


async def test_a_form_encoded_thread_reply_is_filed_under_its_parent(make_slack):
    fake, client = await make_slack()
    parent = await client.chat_postMessage(channel="C0PROC", text="card")

    reply = await client.api_call("chat.postMessage", data={
        "channel": "C0PROC", "text": "Dana approved", "thread_ts": parent["ts"], "reply_broadcast": "true",
        "blocks": json.dumps([section("Dana approved")]),
    })

    assert reply["message"]["thread_ts"] == parent["ts"]
    (kept,) = fake.thread_replies("C0PROC", parent["ts"])
    assert (kept.text, kept.reply_broadcast, kept.blocks) == ("Dana approved", True, [section("Dana approved")])


async def test_update_replaces_the_content_and_keeps_the_earlier_version(make_slack):
    fake, client = await make_slack()
    posted = await client.chat_postMessage(channel="C0PROC", text="v1", blocks=[section("one")])

    updated = await client.chat_update(channel="C0PROC", ts=posted["ts"], text="v2", blocks=[section("two")])

    assert (updated["channel"], updated["ts"], updated["text"]) == ("C0PROC", posted["ts"], "v2")
    kept = fake.message("C0PROC", posted["ts"])
    assert (kept.text, kept.blocks) == ("v2", [section("two")])
    assert kept.updates == [{"text": "v1", "blocks": [section("one")]}]


async def test_updating_a_message_that_does_not_exist_fails(make_slack):
    _, client = await make_slack()

    failure = await refused(client.chat_update(channel="C0PROC", ts="1718364000.000100", text="x"))

    assert failure.response["error"] == "message_not_found"


async def test_an_unknown_channel_is_not_found(make_slack):
    fake, client = await make_slack()

    failure = await refused(client.chat_postMessage(channel="C0NOPE", text="hello"))

    assert failure.response["error"] == "channel_not_found"
    assert all(not messages for messages in fake.messages.values())


async def test_a_message_needs_text_or_blocks(make_slack):
    _, client = await make_slack()

    failure = await refused(client.api_call("chat.postMessage", json={"channel": "C0PROC"}))

    assert failure.response["error"] == "no_text"


async def test_a_dm_channel_is_stable_per_user_and_unknown_users_fail(make_slack):
    fake, client = await make_slack()

    first = await client.conversations_open(users="U0DANA")
    again = await client.conversations_open(users="U0DANA")
    other = await client.conversations_open(users="U0SAM")
    failure = await refused(client.conversations_open(users="U0NOBODY"))

    assert first["channel"]["id"] == again["channel"]["id"] != other["channel"]["id"]
    assert first["channel"]["id"].startswith("D") and again["already_open"] is True
    assert failure.response["error"] == "user_not_found"
    sent = await client.chat_postMessage(channel=first["channel"]["id"], text="your turn")
    assert fake.message(first["channel"]["id"], sent["ts"]).text == "your turn"


async def test_an_ephemeral_message_is_kept_for_its_user_only(make_slack):
    fake, client = await make_slack()

    answer = await client.chat_postEphemeral(channel="C0PROC", user="U0DANA", text="You can't approve your own request")

    assert SLACK_TS.match(answer["message_ts"])
    assert fake.ephemerals == [{"channel": "C0PROC", "user": "U0DANA", "text": "You can't approve your own request",
                                "blocks": [], "thread_ts": None, "message_ts": answer["message_ts"]}]
    assert fake.messages["C0PROC"] == []


async def test_an_ephemeral_message_to_someone_outside_the_channel_is_refused(make_slack):
    fake, client = await make_slack()
    fake.add_user("U0OUT", "outsider")
    fake.set_members("C0PROC", {"U0DANA"})

    with pytest.raises(SlackApiError) as refused:
        await client.chat_postEphemeral(channel="C0PROC", user="U0OUT", text="status of P00042")

    assert refused.value.response["error"] == "user_not_in_channel"
    await client.chat_postEphemeral(channel="C0PROC", user="U0DANA", text="status of P00042")
    assert [e["user"] for e in fake.ephemerals] == ["U0DANA"]


async def test_views_open_records_the_modal_and_spends_the_trigger(make_slack):
    fake, client = await make_slack()
    trigger = SlackSigner("secret").trigger_id()
    modal = reject_modal("req-1", 2, 0, "C0PROC", "1718364000.000100")

    opened = await client.views_open(trigger_id=trigger, view=modal)
    reused = await refused(client.views_open(trigger_id=trigger, view=modal))
    garbled = await refused(client.views_open(trigger_id="not-a-trigger", view=modal))

    assert opened["view"]["id"].startswith("V") and opened["view"]["callback_id"] == "handoff.reject_modal"
    assert fake.views == [{"trigger_id": trigger, "view": opened["view"]}]
    assert (reused.response["error"], garbled.response["error"]) == ("exchanged_trigger_id", "invalid_trigger_id")


async def test_views_update_checks_the_hash(make_slack):
    _, client = await make_slack()
    modal = reject_modal("req-1", 2, 0, "C0PROC", "1718364000.000100")
    opened = await client.views_open(trigger_id=SlackSigner("secret").trigger_id(), view=modal)

    updated = await client.views_update(view_id=opened["view"]["id"], hash=opened["view"]["hash"], view={**modal, "private_metadata": "{}"})
    stale = await refused(client.views_update(view_id=opened["view"]["id"], hash=opened["view"]["hash"], view=modal))

    assert updated["view"]["private_metadata"] == "{}" and updated["view"]["hash"] != opened["view"]["hash"]
    assert stale.response["error"] == "hash_conflict"


async def test_more_than_fifty_blocks_are_invalid(make_slack):
    _, client = await make_slack()

    failure = await refused(client.chat_postMessage(channel="C0PROC", text="x", blocks=[section(str(n)) for n in range(51)]))

    assert failure.response["error"] == "invalid_blocks"
    assert failure.response["errors"] == ["no more than 50 items allowed [json-pointer:/blocks]"]


async def test_an_over_long_section_is_invalid_and_says_where(make_slack):
    _, client = await make_slack()

    failure = await refused(client.chat_postMessage(channel="C0PROC", text="x", blocks=[section("ok"), section("x" * 3001)]))

    assert failure.response["error"] == "invalid_blocks"
    (problem,) = failure.response["errors"]
    assert "3000" in problem and problem.endswith("[json-pointer:/blocks/1]")


async def test_duplicate_block_ids_are_invalid(make_slack):
    _, client = await make_slack()

    failure = await refused(client.chat_postMessage(channel="C0PROC", text="x", blocks=[section("a", "same"), section("b", "same")]))

    assert failure.response["error"] == "invalid_blocks"


async def test_text_over_forty_thousand_characters_is_truncated_with_a_warning(make_slack):
    fake, client = await make_slack()

    answer = await client.chat_postMessage(channel="C0PROC", text="x" * 40_001)

    assert answer["response_metadata"]["warnings"] == ["message_truncated"]
    assert len(fake.message("C0PROC", answer["ts"]).text) == 40_000


async def test_posting_faster_than_once_a_second_per_channel_is_rate_limited(make_slack, clock):
    fake, client = await make_slack(RateLimits(post_per_channel=Limit(1, 1.0)))

    await client.chat_postMessage(channel="C0PROC", text="first")
    failure = await refused(client.chat_postMessage(channel="C0PROC", text="too soon"))
    elsewhere = await client.chat_postMessage(channel="C0FIN", text="another channel")
    clock.advance(seconds=1)
    later = await client.chat_postMessage(channel="C0PROC", text="later")

    assert failure.response.status_code == 429
    assert failure.response.headers["Retry-After"] == "1"
    assert failure.response.data == {"ok": False, "error": "ratelimited"}
    assert elsewhere["ok"] and later["ok"]
    assert [m.text for m in fake.messages["C0PROC"]] == ["first", "later"]
    assert fake.rate_limited_count == 1


async def test_a_method_tier_limits_calls_per_minute_and_says_how_long_to_wait(make_slack, clock):
    fake, client = await make_slack(RateLimits(methods={"conversations.open": Limit(2, 60)}))

    await client.conversations_open(users="U0DANA")
    await client.conversations_open(users="U0SAM")
    clock.advance(seconds=20)
    failure = await refused(client.conversations_open(users="U0DANA"))

    assert (failure.response.status_code, failure.response.headers["Retry-After"]) == (429, "40")
    assert TIERS[3] == Limit(50, 60) and fake.rate_limited_count == 1


@pytest.fixture
async def raw_post(aiohttp_client):
    fake = FakeSlack(TOKEN)
    fake.add_channel("C0PROC", "procurement")
    client = await aiohttp_client(fake.app)

    async def post(body: bytes, content_type: str) -> tuple[int, dict]:
        response = await client.post("/api/chat.postMessage", data=body,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type})
        return response.status, await response.json()

    return post


@pytest.mark.parametrize(("body", "content_type", "error"), [
    (b"{not json", "application/json", "invalid_json"),
    (b"[1, 2]", "application/json", "json_not_object"),
    (b"channel=C0PROC&text=hi", "text/csv", "invalid_post_type"),
    (b"channel=C0PROC&text=hi&blocks=%5Bnope", "application/x-www-form-urlencoded", "invalid_blocks_format"),
])
async def test_malformed_bodies_get_slack_errors_not_crashes(raw_post, body, content_type, error):
    assert await raw_post(body, content_type) == (200, {"ok": False, "error": error})


async def test_a_token_form_field_authenticates_like_the_header(aiohttp_client):
    fake = FakeSlack(TOKEN)
    fake.add_channel("C0PROC", "procurement")
    client = await aiohttp_client(fake.app)

    response = await client.post("/api/chat.postMessage", data={"token": TOKEN, "channel": "C0PROC", "text": "hi"})

    assert (await response.json())["ok"] is True
    assert fake.calls == [("chat.postMessage", {"channel": "C0PROC", "text": "hi"})]  # the token is never kept


def fixture_json(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def shape(value):
    """The keys of a JSON value, recursively: what must match a real payload, whatever the ids and texts."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__ if value is not None else None


def payload(body: bytes) -> dict:
    return json.loads(parse_qs(body.decode())["payload"][0])


def test_signed_bodies_verify_with_the_sdk_verifier(clock):
    signer = SlackSigner("shh-secret", clock)
    body = signer.slash_command_body("U0DANA", "dana", "C0PROC", "procurement", "status P00042")

    headers = signer.sign(body)

    assert SignatureVerifier("shh-secret").is_valid_request(body, headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    assert not SignatureVerifier("shh-secret").is_valid_request(body + b"x", headers)


def test_a_click_is_shaped_like_slacks_and_names_the_real_button(clock):
    signer = SlackSigner("secret", clock)
    message = fixture_json("block_actions_approve.json")["message"]

    click = payload(signer.block_actions_body("U04HNDAPPR1", "dana.approver", "C07APPROVALS", message["ts"],
                                              "handoff.reject", "v", channel_name="approvals", message=message))

    assert shape(click) == shape(fixture_json("block_actions_approve.json"))
    (action,) = click["actions"]
    assert (action["block_id"], action["style"], action["text"]["text"]) == ("po_actions:P00042:v3", "danger", "Reject")
    assert re.match(r"^\d+\.\d+\.[0-9a-f]+$", click["trigger_id"])


def test_a_modal_submit_is_shaped_like_slacks_and_carries_what_was_typed(clock):
    signer = SlackSigner("secret", clock)
    fixture = fixture_json("view_submission_ask_info.json")
    opened = {**fixture["view"]}
    del opened["state"]

    submit = payload(signer.view_submission_body("U04HNDAPPR1", "dana.approver", opened,
                                                 {"question_block": {"question_input": "Why 18% above?"}}))

    assert shape(submit) == shape(fixture)
    assert submit["view"]["state"]["values"] == {
        "question_block": {"question_input": {"type": "plain_text_input", "value": "Why 18% above?"}}}
    assert submit["view"]["private_metadata"] == fixture["view"]["private_metadata"]


def test_a_slash_command_has_the_fields_of_slacks_in_order(clock):
    signer = SlackSigner("secret", clock)
    fixture = parse_qsl((FIXTURES / "slash_command_status.txt").read_text().strip())

    command = parse_qsl(signer.slash_command_body("U04HNDAPPR1", "dana.approver", "C07APPROVALS", "approvals", "status P00042").decode())

    assert [k for k, _ in command] == [k for k, _ in fixture]
    assert dict(command)["text"] == "status P00042" and dict(command)["command"] == "/handoff"


def test_an_event_is_shaped_like_slacks(clock):
    fixture = fixture_json("event_app_mention.json")

    event = json.loads(SlackSigner("secret", clock).event_callback_body(fixture["event"], "Ev07HANDOFF01"))

    assert shape(event) == shape(fixture)
    assert event["event_time"] == int(clock.now().timestamp())
