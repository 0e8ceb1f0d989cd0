"""Fixtures for the Teams adapter tests: a Bot Connector fake in its own thread, and the bot served over HTTP."""

from __future__ import annotations

import pytest
from aiohttp import web
from teams_harness import APP_ID, DANA, PASSWORD, TENANT, MemoryDirectory, StubApprovals, settings_for

from handoff.bot.channels.teams import TeamsChannel, teams_routes
from handoff.bot.fakes.botconnector import FakeBotConnector


@pytest.fixture
def connector(clock):
    with FakeBotConnector(APP_ID, PASSWORD, tenant_id=TENANT, clock=clock).serve() as fake:
        fake.installed_for(DANA)
        yield fake


@pytest.fixture
def directory() -> MemoryDirectory:
    return MemoryDirectory()


@pytest.fixture
def approvals() -> StubApprovals:
    return StubApprovals()


@pytest.fixture
async def channel(connector, directory, approvals) -> TeamsChannel:
    teams = TeamsChannel(settings_for(connector), directory, approvals)
    yield teams
    await teams.close()


@pytest.fixture
async def bot_url(aiohttp_server, channel) -> str:
    app = web.Application()
    app.add_routes(teams_routes(channel))
    server = await aiohttp_server(app)
    return str(server.make_url("/api/messages"))

