"""A running stack with the console's admin token set, and a browser-like session on it."""

from __future__ import annotations

import pytest
from console_helpers import TOKEN, Browser, always_open

from handoff.bot.fakes.stack import SAMPLE_ROUTING, local_stack
from handoff.bot.routing_file import load_routing


@pytest.fixture
async def stack(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("HANDOFF_CONSOLE__TOKEN", TOKEN)
    async with local_stack(tmp_path / "handoff.db", clock=clock, routing=always_open(load_routing(SAMPLE_ROUTING))) as running:
        yield running


@pytest.fixture
async def browser(stack):
    browser = Browser(stack.handoff_url)
    yield browser
    await browser.http.close()
