"""A real `handoff serve` process against fake Odoo and Slack, killed at the end of each test whatever happened."""

from __future__ import annotations

import aiohttp
import pytest
from crash_harness import Handoff, fakes


@pytest.fixture
async def handoff(tmp_path):
    async with fakes() as running, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        process = Handoff(running, tmp_path / "handoff.db", http)
        try:
            yield process
        finally:
            await process.kill()
