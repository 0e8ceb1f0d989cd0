"""A claim after one whose post answer was lost: the card found on the platform is adopted only if it can be brought up to date."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from handoff.bot.channels.slack import SlackChannel
from handoff.bot.core.act import Approvals
from handoff.bot.core.deliver import Dispatcher
from handoff.bot.core.effects import Effects
from handoff.bot.core.errors import ChatError
from handoff.bot.core.models import Target
from handoff.bot.fakes.stack import fake_slack_for
from handoff.state import outbox

LEASE = timedelta(minutes=2)


class RefusesEdits(SlackChannel):
    """Slack as it answers for a message the bot may no longer edit (chat.update `cant_update_message`)."""

    async def update_card(self, posted, view) -> None:
        raise ChatError("Slack chat.update failed: cant_update_message.", permanent=True)


@pytest.fixture
async def lost_answer(core, open_request, clock, aiohttp_server):
    """A card posted by a claim that died before recording it; returns a runner for the next claim."""
    slack = fake_slack_for(core.routing, clock)
    server = await aiohttp_server(slack.app)
    request = open_request("P00077")
    address = core.routing.channels[request.plan.stages[0].channel].slack
    target = Target(platform="slack", kind="channel", address=address)
    with core.store.transaction() as conn:
        Effects(conn, clock.now()).post_card(request.id, 0, target)
        [item] = outbox.claim_due(conn, clock.now(), 10, LEASE)
    client = AsyncWebClient(token=slack.token, base_url=str(server.make_url("/api/")))
    approvals = Approvals(core)
    lost = await SlackChannel(client).post_card(request.id, 0, target, await approvals.view(request.id), key=item.idempotency_key)
    clock.advance(seconds=LEASE.total_seconds() + 1)  # the dead claim's lease runs out

    async def next_claim(channel_type: type[SlackChannel]) -> list[str]:
        await Dispatcher(core, approvals, {"slack": channel_type(client)}, lease=LEASE).drain()
        return [card.message_id for card in core.store.cards(request.id)]

    return next_claim, lost, slack.messages[address]


async def test_a_found_card_is_adopted_and_no_second_card_is_posted(lost_answer):
    next_claim, lost, messages = lost_answer

    recorded = await next_claim(SlackChannel)

    assert recorded == [lost.message_id]
    assert len(messages) == 1


async def test_a_found_card_that_can_no_longer_be_edited_is_replaced_by_a_live_one(lost_answer, caplog):
    next_claim, lost, messages = lost_answer

    with caplog.at_level(logging.WARNING, logger="handoff.bot.core.deliver"):
        recorded = await next_claim(RefusesEdits)

    assert len(recorded) == 1 and recorded[0] != lost.message_id
    assert [m.ts for m in messages] == [lost.message_id, recorded[0]]
    assert any(r.getMessage() == "card.found_not_adopted" for r in caplog.records)
