"""The console in headless Chromium, driven by playwright-core: sign in, aging board, a request, a dead-letter retry."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from console_helpers import TOKEN, pump

from handoff.bot.core.effects import Effects
from handoff.bot.core.events import Event
from handoff.bot.core.route import ops_target
from handoff.bot.fakes.waiting import wait_until
from handoff.state import outbox

ROOT = Path(__file__).resolve().parents[3]
PLAYWRIGHT = ROOT / ".cache" / "playwright" / "node_modules" / "playwright-core"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: run infra/install-browser.sh"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: run infra/install-browser.sh (apt-get install chromium)"),
    pytest.mark.skipif(not PLAYWRIGHT.exists(), reason=f"playwright-core is not installed at {PLAYWRIGHT}: run infra/install-browser.sh"),
]


async def test_an_operator_signs_in_opens_a_stalled_request_and_retries_a_dead_letter(stack, clock):
    for reference in ("P00042", "P00043", "P00045"):
        await stack.send_order(reference)
    await wait_until(pump(stack, clock), what="the cards to go out")
    await stack.click("dana", await stack.card("C0PROCURE", "P00045"), "handoff.approve")
    await wait_until(pump(stack, clock), what="the approval to reach Odoo")
    stack.store.log(stack.store.find_requests("P00043")[0].id, Event.REQUEST_STALLED, "handoff", {"stage": 0, "role": "procurement_manager", "sla_hours": 8})
    with stack.store.transaction() as conn:
        Effects(conn, clock.now()).notify(ops_target(stack.routing, "slack"), "Retried in the browser", key="browser-test")
        outbox.bury(conn, outbox.items(conn, "pending")[-1].id, "channel_not_found")
    ARTIFACTS.mkdir(exist_ok=True)
    node = await asyncio.create_subprocess_exec(
        "node", str(Path(__file__).with_name("console_e2e.cjs")), stack.handoff_url, TOKEN, str(ARTIFACTS),
        env={**os.environ, "PLAYWRIGHT_CORE": str(PLAYWRIGHT), "CHROMIUM": str(CHROMIUM)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(node.communicate(), timeout=90)
    assert node.returncode == 0, output.decode()
    await wait_until(lambda: any(m.text == "Retried in the browser" for m in stack.slack.messages["C0OPS"]),
                     what="the alert retried in the browser to reach the ops channel")
    for name in ("aging-board", "request", "insights", "outbox-retried"):
        assert (ARTIFACTS / f"console-{name}.png").stat().st_size > 10_000
