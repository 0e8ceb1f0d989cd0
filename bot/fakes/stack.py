"""Handoff and local fakes of Odoo and Slack on loopback, over real HTTP: what `handoff demo` and the tests drive."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from handoff.bot.app import CORE, WORKER, QuietAccessLogger, create_app
from handoff.bot.channels.slack import SlackSettings
from handoff.bot.config import Settings
from handoff.bot.core.ports import Clock, SystemClock
from handoff.bot.core.route import RoutingConfig
from handoff.bot.routing_file import load_routing
from handoff.connectors.odoo import OdooSettings
from handoff.state.store import Store

from .odoo import FakeOdoo
from .odoo_seed import demo_seed
from .slack import FakeMessage, FakeSlack, SlackSigner
from .waiting import wait_until

SAMPLE_ROUTING = Path(__file__).resolve().parent.parent / "samples" / "routing.toml"
SIGNING_SECRET = "local-signing-secret"
WEBHOOK_SECRET = "local-webhook-secret"


async def serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str]:
    """Start `app` on 127.0.0.1 (port 0: any free one) and return its runner and base URL."""
    runner = web.AppRunner(app, access_log_class=QuietAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{bound}"


@dataclass
class LocalStack:
    odoo: FakeOdoo
    slack: FakeSlack
    signer: SlackSigner
    routing: RoutingConfig
    orders: dict[str, int]
    urls: dict[str, str]
    app: web.Application
    http: aiohttp.ClientSession

    @property
    def store(self) -> Store:
        return self.app[CORE].store

    @property
    def handoff_url(self) -> str:
        return self.urls["handoff"]

    def webhook_url(self, key: str = WEBHOOK_SECRET) -> str:
        return f"{self.handoff_url}/webhooks/odoo?key={key}"

    async def post_webhook(self, body: bytes, key: str = WEBHOOK_SECRET) -> tuple[int, dict]:
        """POST as Odoo's webhook action does: JSON, no auth header, the secret in the URL."""
        async with self.http.post(self.webhook_url(key), data=body, headers={"Content-Type": "application/json"}) as response:
            return response.status, await response.json(content_type=None)

    async def send_order(self, reference: str) -> tuple[int, dict]:
        return await self.post_webhook(self.odoo.webhook_body(self.orders[reference]))

    async def post_slack(self, body: bytes, content_type: str = "application/x-www-form-urlencoded", headers: dict | None = None) -> tuple[int, str]:
        """POST to /slack/events signed as Slack signs it (or with the headers given)."""
        sent = {"Content-Type": content_type, **(headers if headers is not None else self.signer.sign(body))}
        async with self.http.post(f"{self.handoff_url}/slack/events", data=body, headers=sent) as response:
            return response.status, await response.text()

    def slack_id(self, person: str) -> str:
        return self.routing.people[person].slack or ""

    async def click(self, person: str, card: FakeMessage, action_id: str) -> tuple[int, str]:
        """`person` clicks a button on `card`, as Slack would report it."""
        button = next(e for b in card.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id)
        body = self.signer.block_actions_body(
            self.slack_id(person), person, card.channel, card.ts, action_id, button["value"], message=card.wire(self.slack.workspace)
        )
        return await self.post_slack(body)

    async def submit_modal(self, person: str, text: str) -> tuple[int, str]:
        """`person` types `text` into the modal Handoff last opened and submits it."""
        view = self.slack.views[-1]["view"]
        block = next(b for b in view["blocks"] if b["type"] == "input")
        body = self.signer.view_submission_body(
            self.slack_id(person), person, view, {block["block_id"]: {block["element"]["action_id"]: text}}
        )
        return await self.post_slack(body)

    async def card(self, channel: str, reference: str, timeout: float = 5.0) -> FakeMessage:
        """The top-level card for `reference` in `channel` (a channel id or a person's DM), once it arrives."""
        def conversation() -> str:
            # A DM channel exists only once Handoff has opened it, so look it up on every poll.
            return self.slack.dms.get(self.slack_id(channel), channel) if channel in self.routing.people else channel

        return await wait_until(
            lambda: next((m for m in self.slack.messages.get(conversation(), []) if m.thread_ts is None and reference in m.text), None),
            timeout=timeout, what=f"a card for {reference} in {channel}",
        )

    async def settled(self, timeout: float = 5.0) -> None:
        """Wait until the worker has nothing due and no round pending."""
        worker = self.app[WORKER]
        await wait_until(worker.is_settled, timeout=timeout, what="the inbox and outbox to settle")

    def whispers_to(self, person: str) -> list[str]:
        return [e["text"] for e in self.slack.ephemerals if e.get("user") == self.slack_id(person)]


def _fake_slack(routing: RoutingConfig, clock: Clock) -> FakeSlack:
    slack = FakeSlack(clock=clock)
    for name, channel in routing.channels.items():
        if channel.slack:
            slack.add_channel(channel.slack, name)
    for key, person in routing.people.items():
        if person.slack:
            slack.add_user(person.slack, key)
    return slack


@asynccontextmanager
async def local_stack(
    database: Path,
    *,
    routing: RoutingConfig | None = None,
    clock: Clock | None = None,
    odoo_version: int = 19,
    handoff_port: int = 0,
) -> AsyncIterator[LocalStack]:
    """Fake Odoo (seeded with the demo orders), fake Slack, and Handoff wired to both, all on loopback."""
    clock = clock or SystemClock()
    routing = routing or load_routing(SAMPLE_ROUTING)
    odoo = FakeOdoo(version=odoo_version)
    orders = demo_seed(odoo)
    slack = _fake_slack(routing, clock)
    runners = []
    try:
        odoo_runner, odoo_url = await serve(odoo.app)
        slack_runner, slack_url = await serve(slack.app)
        runners += [odoo_runner, slack_runner]
        settings = Settings(
            database=database,
            slack=SlackSettings(bot_token=slack.token, signing_secret=SIGNING_SECRET, api_base_url=f"{slack_url}/api/"),
            odoo=OdooSettings(url=odoo_url, database=odoo.database, login=odoo.api_login, api_key=odoo.api_key,
                              webhook_secret=WEBHOOK_SECRET),
        )
        app = create_app(settings, routing, clock)
        handoff_runner, handoff_url = await serve(app, handoff_port)
        runners.insert(0, handoff_runner)
        async with aiohttp.ClientSession() as http:
            yield LocalStack(
                odoo=odoo, slack=slack, signer=SlackSigner(SIGNING_SECRET, clock, slack.workspace), routing=routing,
                orders=orders, urls={"handoff": handoff_url, "odoo": odoo_url, "slack": slack_url}, app=app, http=http,
            )
    finally:
        for runner in runners:
            await runner.cleanup()


def button_binding(card: FakeMessage, action_id: str) -> dict:
    button = next(e for b in card.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id)
    return json.loads(button["value"])
