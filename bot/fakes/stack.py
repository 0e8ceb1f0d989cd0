"""Handoff and local fakes of its ERP (Odoo or Dataverse) and chat (Slack or Teams) on loopback, over real HTTP:
what `handoff demo` and the tests drive."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp
from aiohttp import web

from handoff.bot.app import CORE, WORKER, QuietAccessLogger, create_app
from handoff.bot.channels.slack import SlackSettings
from handoff.bot.config import Settings
from handoff.bot.core.models import Platform
from handoff.bot.core.ports import Clock, SystemClock
from handoff.bot.core.route import RoutingConfig
from handoff.bot.routing_file import load_routing
from handoff.connectors.odoo import OdooSettings
from handoff.state.store import Store

from .odoo import FakeOdoo
from .postgres import database_for_test
from .odoo_seed import demo_seed
from .slack import FakeMessage, FakeSlack, SlackSigner
from .stack_dataverse import DataverseDriver, dataverse_fakes, demo_orders
from .stack_teams import TeamsDriver, teams_connector, teams_settings
from .waiting import wait_until

Source = Literal["odoo", "dataverse"]
SAMPLE_ROUTING = Path(__file__).resolve().parent.parent / "samples" / "routing.toml"
SIGNING_SECRET = "local-signing-secret"
WEBHOOK_SECRET = "local-webhook-secret"


async def serve(app: web.Application, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, str]:
    """Start `app` on 127.0.0.1 (port 0: any free one) and return its runner and base URL."""
    runner = web.AppRunner(app, access_log_class=QuietAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"{'https' if ssl_context else 'http'}://127.0.0.1:{bound}"


def routing_for(chat: Platform, folder: Path) -> RoutingConfig:
    """The sample routing with `[defaults] platform` set to `chat`, written out and loaded so it is validated as a file."""
    text = SAMPLE_ROUTING.read_text(encoding="utf-8")
    path = folder / f"routing-{chat}.toml"
    path.write_text(re.sub(r'^platform = "slack"', f'platform = "{chat}"', text, count=1, flags=re.MULTILINE), encoding="utf-8")
    return load_routing(path)


@dataclass
class LocalStack:
    odoo: FakeOdoo | None
    slack: FakeSlack | None
    signer: SlackSigner | None
    routing: RoutingConfig
    orders: dict[str, int | str]
    urls: dict[str, str]
    app: web.Application
    http: aiohttp.ClientSession
    source: Source = "odoo"
    chat: Platform = "slack"
    dataverse: DataverseDriver | None = None
    teams: TeamsDriver | None = None

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

    async def send_order(self, reference: str, *, redeliver: bool = False) -> tuple[int, dict]:
        """The ERP's webhook for one of the seeded orders, as that ERP posts it (`redeliver`: the same delivery again)."""
        if self.dataverse:
            return await self.dataverse.send_order(reference, redeliver=redeliver)
        return await self.post_webhook(self.odoo.webhook_body(self.orders[reference]))

    def change_amount(self, reference: str, amount: float) -> None:
        """Someone edits the order's total in the ERP, and no webhook tells Handoff: drift."""
        if self.dataverse:
            self.dataverse.change(reference, totalamount=amount)
        else:
            self.odoo.set_field("purchase.order", self.orders[reference], amount_total=amount)

    def erp_status(self, reference: str) -> str:
        """The order's state in the ERP: Odoo's `state`, or Dataverse's status reason label."""
        if self.dataverse:
            row = self.dataverse.row(reference)
            return {100000001: "pending approval", 100000002: "approved", 100000003: "rejected"}.get(row["statuscode"], str(row["statuscode"]))
        return self.odoo.db.records["purchase.order"][self.orders[reference]]["state"]

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

    def order_state(self, reference: str) -> str:
        """The Odoo state of one of the sample orders, as Odoo holds it now."""
        return self.odoo.db.records["purchase.order"][self.orders[reference]]["state"]

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


def fake_slack_for(routing: RoutingConfig, clock: Clock) -> FakeSlack:
    """A fake Slack that knows every channel and person the routing config names."""
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
    source: Source = "odoo",
    chat: Platform = "slack",
    uninstalled: Iterable[str] = (),
    local_development: bool = False,
) -> AsyncIterator[LocalStack]:
    """Fakes of the ERP (`source`, seeded with the demo orders) and the chat (`chat`), and Handoff wired to both.

    On Teams, the app is installed in every team channel of the routing config and personally for every person
    except `uninstalled`; `local_development` serves Handoff as for the npm playground (no tokens either way).
    """
    clock = clock or SystemClock()
    routing = routing or (load_routing(SAMPLE_ROUTING) if chat == "slack" else routing_for(chat, database.parent))
    async with AsyncExitStack() as stack:
        urls, fields, settings = {}, {}, {"database": stack.enter_context(database_for_test(database))}
        if source == "odoo":
            odoo = FakeOdoo(version=odoo_version)
            fields["orders"] = demo_seed(odoo)
            urls["odoo"] = await _serve(stack, odoo.app)
            fields["odoo"] = odoo
            settings["odoo"] = OdooSettings(url=urls["odoo"], database=odoo.database, login=odoo.api_login, api_key=odoo.api_key,
                                            webhook_secret=WEBHOOK_SECRET)
        else:
            fake, entra, settings["dataverse"], edits = await stack.enter_async_context(dataverse_fakes(serve, clock))
            fields["orders"], urls["dataverse"], urls["entra"] = demo_orders(fake), settings["dataverse"].url, settings["dataverse"].authority_host
        if chat == "slack":
            slack = fake_slack_for(routing, clock)
            urls["slack"] = await _serve(stack, slack.app)
            fields.update(slack=slack, signer=SlackSigner(SIGNING_SECRET, clock, slack.workspace))
            settings["slack"] = SlackSettings(bot_token=slack.token, signing_secret=SIGNING_SECRET, api_base_url=f"{urls['slack']}/api/")
        else:
            connector, service_url = stack.enter_context(teams_connector(clock, local_development))
            urls["teams"] = service_url
            settings["teams"] = teams_settings(connector, local_development)
        app = create_app(Settings(**settings), routing, clock)
        urls = {"handoff": await _serve(stack, app, handoff_port), **urls}
        http = await stack.enter_async_context(aiohttp.ClientSession())
        if source == "dataverse":
            fields["dataverse"] = DataverseDriver(fake, entra, f"{urls['handoff']}/webhooks/dataverse", http, fields["orders"], edits)
        if chat == "teams":
            fields["teams"] = TeamsDriver(connector, service_url, routing, f"{urls['handoff']}/api/messages", http, local_development)
            await fields["teams"].install(skip=uninstalled)
        yield LocalStack(**{"odoo": None, "slack": None, "signer": None, **fields}, routing=routing, urls=urls, app=app, http=http,
                         source=source, chat=chat)


async def _serve(stack: AsyncExitStack, app: web.Application, port: int = 0) -> str:
    runner, url = await serve(app, port)
    stack.push_async_callback(runner.cleanup)
    return url


def button_binding(card: FakeMessage, action_id: str) -> dict:
    button = next(e for b in card.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id)
    return json.loads(button["value"])
