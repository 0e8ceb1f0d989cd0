"""Slack Web API calls build the SDK's debug lines only when DEBUG is on: a card's blocks are not formatted for nothing."""

from __future__ import annotations

import logging

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from handoff.bot.channels.slack import SlackChannel, sdk_logger
from handoff.bot.fakes.slack import FakeSlack

TOKEN = "xoxb-test-token"


class Counted(str):
    """Text that counts how often it is formatted with repr(), as the SDK's debug line formats a call's JSON."""

    formatted = 0

    def __repr__(self) -> str:
        Counted.formatted += 1
        return super().__repr__()


@pytest.fixture
async def post(aiohttp_server, clock):
    fake = FakeSlack(TOKEN, clock=clock)
    fake.add_channel("C0PROC", "procurement")
    server = await aiohttp_server(fake.app)
    logger = logging.getLogger("slack_sdk.web.async_base_client")
    level = logger.level

    async def post_at(root_level: int) -> int:
        logging.getLogger().setLevel(root_level)
        logger.setLevel(logging.NOTSET)
        channel = SlackChannel(AsyncWebClient(token=TOKEN, base_url=str(server.make_url("/api/")), logger=sdk_logger()))
        Counted.formatted = 0
        await channel.call("chat.postMessage", channel="C0PROC", text=Counted("P00042 waits for approval"))
        return Counted.formatted

    root = logging.getLogger().level
    yield post_at
    logging.getLogger().setLevel(root)
    logger.setLevel(level)


async def test_a_call_at_info_formats_no_debug_line(post):
    assert await post(logging.INFO) == 0


async def test_a_call_at_debug_still_logs_its_body(post):
    assert await post(logging.DEBUG) > 0
