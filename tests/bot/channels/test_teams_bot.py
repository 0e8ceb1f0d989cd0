"""Teams inbound over real HTTP: Bot Framework JWTs, installs, Action.Execute invokes and legacy Action.Submit."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from teams_harness import (
    APP_ID,
    CHANNEL,
    DANA,
    TEAM,
    card_invoke,
    channel_install,
    make_view,
    personal_install,
    settings_for,
)

from handoff.bot.channels.teams import TeamsChannel, teams_routes
from handoff.bot.core.models import Outcome, Target, Verb
from handoff.bot.fakes.botconnector import FakeBotConnector, send_activity

BINDING = {"r": "req-1", "v": 3, "s": 0}


async def test_install_in_personal_scope_stores_the_reference(connector, bot_url, directory):
    status, _ = await send_activity(bot_url, personal_install(connector), connector.issue_token())

    assert status == 201
    reference = directory.references[("teams", f"user:{DANA}")]
    assert reference["serviceUrl"] == connector.service_url
    assert reference["user"]["aadObjectId"] == DANA
    assert reference["tenantId"] == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert "activityId" not in reference


async def test_install_in_a_team_stores_the_channel_and_the_team(connector, bot_url, directory):
    status, _ = await send_activity(bot_url, channel_install(connector), connector.issue_token())

    assert status == 201
    assert directory.references[("teams", f"channel:{CHANNEL}")]["conversation"]["id"] == CHANNEL
    assert ("teams", f"team:{TEAM}") in directory.references


@pytest.mark.parametrize(("action", "stored"), [("add", True), ("remove", False)])
async def test_installation_update_add_is_remembered_and_remove_is_not(connector, bot_url, directory, action, stored):
    activity = personal_install(connector)
    activity.pop("membersAdded")
    activity.update(type="installationUpdate", action=action)

    status, _ = await send_activity(bot_url, activity, connector.issue_token())

    assert status == 201
    assert (("teams", f"user:{DANA}") in directory.references) is stored


@pytest.mark.parametrize("token", [
    pytest.param(lambda fake: fake.issue_token(expired=True), id="expired"),
    pytest.param(lambda fake: fake.issue_token(audience="another-bots-app-id"), id="wrong-audience"),
    pytest.param(lambda fake: fake.issue_token(kid="not-published"), id="unknown-key"),
    pytest.param(lambda fake: fake.issue_token(service_url="https://smba.trafficmanager.net/evil/"), id="other-serviceurl"),
    pytest.param(lambda fake: None, id="missing-header"),
])
async def test_requests_not_signed_for_this_bot_are_refused_before_the_bot(connector, bot_url, directory, token):
    status, body = await send_activity(bot_url, personal_install(connector), token(connector))

    assert status == 401
    assert body == {"error": "The request is not signed by the Bot Framework for this bot."}
    assert directory.references == {}


async def test_local_development_accepts_anonymous_requests_and_says_so(clock, directory, approvals, aiohttp_server, caplog):
    with FakeBotConnector(APP_ID, "", require_auth=False, clock=clock).serve() as playground:
        settings = settings_for(playground, app_password="", local_development=True)
        with caplog.at_level(logging.WARNING):
            app = aiohttp.web.Application()
            app.add_routes(teams_routes(TeamsChannel(settings, directory, approvals)))
            server = await aiohttp_server(app)
            status, _ = await send_activity(str(server.make_url("/api/messages")), personal_install(playground))

    assert status == 201
    assert ("teams", f"user:{DANA}") in directory.references
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "teams.local_development" in warnings
    assert "teams.unauthenticated_request" in warnings


async def test_approve_answers_with_the_updated_card_and_binds_the_verified_identity(connector, bot_url, approvals):
    invoke = card_invoke(connector, "handoff.approve", {**BINDING, "approver": "someone-else"})

    status, body = await send_activity(bot_url, invoke, connector.issue_token())

    assert status == 200
    assert body["statusCode"] == 200
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert "Approved by Dana Approver" in str(body["value"]["body"])
    [action] = approvals.actions
    assert (action.request_id, action.version, action.stage, action.verb) == ("req-1", 3, 0, Verb.APPROVE)
    assert action.actor.user_id == DANA and action.actor.platform == "teams"


async def test_reject_carries_the_typed_reason(connector, bot_url, approvals):
    invoke = card_invoke(connector, "handoff.reject", {**BINDING, "reason": "  Over budget  "})

    status, body = await send_activity(bot_url, invoke, connector.issue_token())

    assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    assert approvals.actions[0].verb is Verb.REJECT and approvals.actions[0].comment == "Over budget"


async def test_reject_without_a_reason_asks_for_one_and_counts_nothing(connector, bot_url, approvals):
    status, body = await send_activity(bot_url, card_invoke(connector, "handoff.reject", BINDING), connector.issue_token())

    assert (status, body) == (200, {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                                    "value": "Please say why you reject it: the requester will see this."})
    assert approvals.actions == []


async def test_a_refused_action_answers_with_the_reason_as_a_message(connector, bot_url, approvals):
    approvals.outcome, approvals.message = Outcome.OWN_REQUEST, "You raised this request, so someone else must approve it."

    status, body = await send_activity(bot_url, card_invoke(connector, "handoff.approve", BINDING), connector.issue_token())

    assert status == 200
    assert body == {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                    "value": "You raised this request, so someone else must approve it."}


async def test_refresh_answers_with_the_current_card_without_acting(connector, bot_url, approvals):
    invoke = card_invoke(connector, "handoff.refresh", BINDING)
    invoke["value"].pop("trigger")  # the local playground sends neither trigger nor action.id
    invoke["value"]["action"].pop("id")

    status, body = await send_activity(bot_url, invoke, connector.issue_token())

    assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    assert body["value"]["refresh"]["userIds"] == [connector.installed_for(DANA)]
    assert approvals.actions == []


@pytest.mark.parametrize("data", [None, {"r": "req-1"}, {"r": "req-1", "v": "three", "s": 0}])
async def test_a_button_without_a_usable_binding_gets_a_400_in_the_body(connector, bot_url, approvals, data):
    status, body = await send_activity(bot_url, card_invoke(connector, "handoff.approve", data), connector.issue_token())

    assert status == 200
    assert body["statusCode"] == 400 and body["type"] == "application/vnd.microsoft.error"
    assert approvals.actions == []


async def test_legacy_submit_updates_the_card_it_came_from(connector, bot_url, channel, approvals):
    await send_activity(bot_url, channel_install(connector), connector.issue_token())
    connector.add_conversation(CHANNEL)
    posted = await channel.post_card("req-1", 0, Target(platform="teams", kind="channel", address=CHANNEL), make_view())
    submit = personal_install(connector)
    submit.update(type="message", id="1718364999000", replyToId=posted.message_id, text=None,
                  value={**BINDING, "verb": "handoff.approve"})
    submit["conversation"] = {"conversationType": "channel", "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "id": CHANNEL}
    submit.pop("membersAdded")

    status, _ = await send_activity(bot_url, submit, connector.issue_token())

    assert status == 201
    assert approvals.actions[0].actor.user_id == DANA
    card = connector.activity(CHANNEL, posted.message_id)
    assert card["updates"] == 1
    assert "Approved by Dana Approver" in str(card["attachments"][0]["content"])


@pytest.mark.parametrize(("content_type", "payload", "status"), [
    ("text/plain", b"hello", 415),
    ("application/json", b"{not json", 400),
    ("application/json", b'{"text": "no type"}', 400),
    ("application/json", b'{"type": "message", "serviceUrl": "https://x/", "conversation": {"id": "a"}, "timestamp": "soon"}', 400),
])
async def test_malformed_requests_get_a_4xx(bot_url, content_type, payload, status):
    # With some token: a request without one is a 401 before its body is read (test_teams_token_first.py); this one
    # is refused for its body before the token is checked, since the check needs the activity's serviceUrl.
    headers = {"Content-Type": content_type, "Authorization": "Bearer any"}
    async with aiohttp.ClientSession() as session:
        async with session.post(bot_url, data=payload, headers=headers) as response:
            assert response.status == status
            assert "error" in await response.json()
