"""Bounded retries with exponential backoff and jitter, then dead letters that reach operations and the CLI."""

from __future__ import annotations

import builtins
import json
import socket
from datetime import datetime

from slack_sdk.web.async_client import AsyncWebClient

from handoff.bot.app import WORKER
from handoff.bot.channels.slack import SlackChannel
from handoff.bot.cli import main
from handoff.bot.core.act import Approvals
from handoff.bot.core.context import Core
from handoff.bot.core.deliver import Dispatcher
from handoff.bot.core.effects import Effects
from handoff.bot.core.models import Target
from handoff.bot.core.retry import Backoff
from handoff.bot.fakes.stack import SAMPLE_ROUTING
from handoff.bot.fakes.waiting import wait_until
from handoff.bot.routing_file import load_routing
from handoff.state import outbox
from handoff.state.store import Store

PROCUREMENT, OPS = "C0PROCURE", "C0OPS"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_an_unreachable_slack_is_retried_with_growing_jittered_delays_then_set_aside(tmp_path, clock):
    store = Store(tmp_path / "handoff.db", clock)
    core = Core(store=store, routing=load_routing(SAMPLE_ROUTING), connectors={}, clock=clock)
    dead_slack = SlackChannel(AsyncWebClient(token="xoxb-x", base_url=f"http://127.0.0.1:{closed_port()}/api/"))
    dispatcher = Dispatcher(core, Approvals(core), {"slack": dead_slack}, max_attempts=6, backoff=Backoff(base_delay=1.0, max_delay=300.0))
    with store.transaction() as conn:
        Effects(conn, clock.now()).notify(Target(platform="slack", kind="channel", address=PROCUREMENT), "hello")
    delays, attempts = [], 0
    for _ in range(100):  # bounded: pacing may hold an item for its slot without counting an attempt
        await dispatcher.drain()
        item = outbox.items(store.conn)[0]
        if item.status == "dead":
            break
        if item.attempts > attempts:
            attempts = item.attempts
            delays.append((datetime.fromisoformat(item.next_at) - clock.now()).total_seconds())
        clock.at = datetime.fromisoformat(item.next_at)
    store.close()

    assert item.status == "dead" and item.attempts == 6
    assert "Slack unreachable for chat.postMessage" in item.last_error
    # Full jitter between half and all of base * 2^(n-1): growing, never in lockstep with other clients.
    for n, delay in enumerate(delays, start=1):
        ceiling = 2 ** (n - 1)
        assert ceiling / 2 <= delay <= ceiling, (n, delay)


async def test_a_dead_letter_reaches_operations_and_the_cli_brings_it_back(stack, capsys):
    # The bot was removed from the procurement channel: Slack answers channel_not_found, which no retry fixes.
    del stack.slack.messages[PROCUREMENT], stack.slack.channel_names[PROCUREMENT]
    await stack.send_order("P00043")
    alert = await wait_until(lambda: [m.text for m in stack.slack.messages[OPS] if "P00043" in m.text], what="the ops alert")
    dead = outbox.items(stack.store.conn, "dead")
    assert len(dead) == 1 and dead[0].kind == "post_card"
    assert "a post card for P00043 failed and was set aside: Slack chat.postMessage failed: channel_not_found." in alert[0]
    assert f"handoff outbox retry {dead[0].id}" in alert[0]

    database = str(stack.store.path)
    assert main(["outbox", "list", "--database", database]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith(f"{dead[0].id}\tdead\tpost_card\t{dead[0].request_id}\tattempts=1\tSlack chat.postMessage failed: channel_not_found.")

    stack.slack.add_channel(PROCUREMENT, "procurement")  # the fix: invite the bot back
    assert main(["outbox", "retry", str(dead[0].id), "--database", database]) == 0
    assert capsys.readouterr().out == f"Outbox item {dead[0].id} queued again.\n"
    stack.app[WORKER].wake()
    await stack.card(PROCUREMENT, "P00043")
    assert main(["outbox", "list", "--database", database]) == 0
    assert capsys.readouterr().out == "No dead letters.\n"


async def test_dropping_a_dead_letter_asks_why_and_logs_the_answer(stack, capsys, monkeypatch):
    del stack.slack.messages[PROCUREMENT], stack.slack.channel_names[PROCUREMENT]
    await stack.send_order("P00043")
    dead = await wait_until(lambda: outbox.items(stack.store.conn, "dead"), what="the dead letter")
    database, item = str(stack.store.path), str(dead[0].id)

    asked = []
    monkeypatch.setattr(builtins, "input", lambda prompt: asked.append(prompt) or "   ")
    assert main(["outbox", "drop", item, "--database", database]) == 1
    assert capsys.readouterr().out == "A reason is required to drop an item: it goes into the decision log.\n"
    assert asked == [f"Why drop outbox item {item}? "]

    monkeypatch.setattr(builtins, "input", lambda prompt: "channel archived; posted by hand")
    assert main(["outbox", "drop", item, "--database", database]) == 0
    assert capsys.readouterr().out == f"Outbox item {item} dropped.\n"
    dropped = stack.store.conn.execute("SELECT actor, body FROM decision_log WHERE event = 'OutboxItemDropped'").fetchall()
    assert [(actor, json.loads(body)) for actor, body in dropped] == [("admin", {"item": int(item), "reason": "channel archived; posted by hand"})]
    assert main(["outbox", "retry", item, "--database", database]) == 1, "a dropped item stays dropped"
