"""Fixtures shared by every test: a controllable clock, a fresh store, the local stack and a fake Slack Web API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from handoff.bot.fakes.postgres import database_for_test
from handoff.bot.fakes.slack import FakeSlack
from handoff.bot.fakes.stack import local_stack
from handoff.state.store import Store


class ManualClock:
    """A clock the test moves; starts at the real time so signed chat requests stay inside their window."""

    def __init__(self, start: datetime | None = None) -> None:
        self.at = start or datetime.now(timezone.utc)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fresh_store(clock: ManualClock) -> Store:
    # HANDOFF_TEST_DATABASE=postgresql://… runs every store test against a scratch PostgreSQL schema instead.
    with database_for_test(":memory:") as database:
        store = Store(database, clock)
        yield store
        store.close()


@pytest.fixture
async def stack(tmp_path):
    """Handoff's app over real HTTP with the fake Odoo and Slack, on the sample routing."""
    async with local_stack(tmp_path / "handoff.db") as running:
        yield running


SLACK_TOKEN = "xoxb-test-token"


@pytest.fixture
async def slack_api(aiohttp_server, clock):
    """The fake Slack Web API with channel C0PROC and user U0DANA, and the real SDK client pointed at it."""
    fake = FakeSlack(SLACK_TOKEN, clock=clock)
    fake.add_channel("C0PROC", "procurement")
    fake.add_user("U0DANA", "dana")
    server = await aiohttp_server(fake.app)
    return fake, AsyncWebClient(token=SLACK_TOKEN, base_url=str(server.make_url("/api/")))
