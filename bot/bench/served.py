"""A real `handoff serve` child process wired to fakes that run in the bench process: Odoo, and Slack or Teams.

The load generator and the fakes share the bench's event loop; Handoff has its own process, so what bounds its
figures is Handoff, and its RSS is Handoff's alone.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from handoff.bot.core.models import Platform
from handoff.bot.core.ports import SystemClock
from handoff.bot.core.route import RoutingConfig
from handoff.bot.fakes.botconnector import FakeBotConnector
from handoff.bot.fakes.odoo import FakeOdoo
from handoff.bot.fakes.odoo_seed import demo_seed
from handoff.bot.fakes.slack import FakeMessage, FakeSlack, SlackSigner
from handoff.bot.fakes.stack import SIGNING_SECRET, WEBHOOK_SECRET, fake_slack_for, serve
from handoff.bot.fakes.stack_teams import APP_ID, APP_PASSWORD, TENANT, TeamsCard, TeamsDriver
from handoff.bot.fakes.threaded import ThreadedServer
from handoff.cards.adaptive import APPROVE

from .observe import REFERENCE, PostWatch, Shelf, TeamsPostWatch, WriteBackWatch
from .process import Child, child_env, child_process, free_port
from .routing import write_routing

APPROVER = "dana"  # a procurement manager who raised none of the bench orders (marc did)
SLACK_APPROVE = "handoff.approve"  # the Block Kit button's action_id, as Slack reports it
CARD_RESPONSE = "application/vnd.microsoft.card.adaptive"


@dataclass
class Served:
    """Handoff in its own process, the fakes it talks to, and how the bench drives and observes them."""

    child: Child
    routing: RoutingConfig
    http: aiohttp.ClientSession
    odoo: FakeOdoo
    shelf: Shelf
    written: WriteBackWatch  # the fake Odoo answered Handoff's button_approve for an order
    posts: PostWatch | TeamsPostWatch  # a card naming a reference reached the fake chat
    slack: FakeSlack | None = None
    slack_url: str = ""
    signer: SlackSigner | None = None
    teams: TeamsDriver | None = None

    @property
    def chat(self) -> Platform:
        return "teams" if self.teams else "slack"

    @property
    def webhook_url(self) -> str:
        return f"{self.child.url}/webhooks/odoo?key={WEBHOOK_SECRET}"

    async def post_webhook(self, body: bytes) -> tuple[int, dict]:
        """POST as Odoo's webhook action does: JSON, no auth header, the secret in the URL."""
        async with self.http.post(self.webhook_url, data=body, headers={"Content-Type": "application/json"}) as response:
            return response.status, await response.json(content_type=None)

    def cards(self, posted: Iterable[tuple[str, Any]]) -> dict[str, FakeMessage | TeamsCard]:
        """The cards as the fake chat holds them, by reference, for (reference, what the post watch reported)."""
        if self.teams:
            return {name: TeamsCard(conversation, activity_id, self.teams.connector.activity(conversation, activity_id))
                    for name, (conversation, activity_id) in posted}
        wanted = {name for name, _ in posted}
        found = {}
        for message in (m for channel in self.slack.messages.values() for m in channel):
            match = REFERENCE.search(message.text) if message.thread_ts is None else None
            if match and match.group(0) in wanted:
                found[match.group(0)] = message
        return found

    def acknowledged(self, status: int, answer: str) -> bool:
        """Slack: a 200. Teams: a 200 whose invoke response carries the updated card, as Universal Actions answer
        (`{"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive", "value": <card>}`)."""
        if status != 200 or not self.teams:
            return status == 200
        body = json.loads(answer or "null")
        return isinstance(body, dict) and body.get("type") == CARD_RESPONSE

    async def approve(self, card: FakeMessage | TeamsCard) -> tuple[int, str]:
        """The approver clicks Approve: a signed Slack block_actions, or a signed Teams adaptiveCard/action invoke."""
        if self.teams:
            status, answer = await self.teams.invoke(APPROVER, card, APPROVE)
            return status, json.dumps(answer)
        button = next(e for b in card.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == SLACK_APPROVE)
        body = self.signer.block_actions_body(self.routing.people[APPROVER].slack or "", APPROVER, card.channel, card.ts, SLACK_APPROVE,
                                              button["value"], message=card.wire(self.slack.workspace))
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self.signer.sign(body)}
        async with self.http.post(f"{self.child.url}/slack/events", data=body, headers=headers) as response:
            return response.status, await response.text()


@asynccontextmanager
async def handoff_process(workdir: Path, database: str | Path, chat: Platform = "slack", name: str = "handoff") -> AsyncIterator[Served]:
    """Fake Odoo and the chat's fake in this process; `handoff serve` on `database` in its own."""
    routing_file = workdir / f"{name}-routing.toml"
    routing = write_routing(routing_file, chat)
    odoo = FakeOdoo()
    demo_seed(odoo)
    written = WriteBackWatch().install(odoo)
    async with AsyncExitStack() as stack:
        odoo_runner, odoo_url = await serve(odoo.app)
        stack.push_async_callback(odoo_runner.cleanup)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        port = free_port()
        settings = {"HANDOFF_DATABASE": str(database), "HANDOFF_PORT": str(port), "HANDOFF_HOST": "127.0.0.1",
                    "HANDOFF_ODOO__URL": odoo_url, "HANDOFF_ODOO__DATABASE": odoo.database, "HANDOFF_ODOO__LOGIN": odoo.api_login,
                    "HANDOFF_ODOO__API_KEY": odoo.api_key, "HANDOFF_ODOO__WEBHOOK_SECRET": WEBHOOK_SECRET}
        fields: dict[str, Any] = {}
        if chat == "slack":
            slack = fake_slack_for(routing, SystemClock())
            fields.update(slack=slack, signer=SlackSigner(SIGNING_SECRET, workspace=slack.workspace), posts=PostWatch.install(slack))
            slack_runner, fields["slack_url"] = await serve(slack.app)
            stack.push_async_callback(slack_runner.cleanup)
            settings.update(HANDOFF_SLACK__BOT_TOKEN=slack.token, HANDOFF_SLACK__SIGNING_SECRET=SIGNING_SECRET,
                            HANDOFF_SLACK__API_BASE_URL=f"{fields['slack_url']}/api/")
        else:
            connector, fields["posts"] = FakeBotConnector(APP_ID, APP_PASSWORD, tenant_id=TENANT), TeamsPostWatch()
            # One token for the whole run (valid for an hour), as the real connector reuses its own: signing RS256 per
            # invoke would spend the load generator's CPU on the bench's side, not Handoff's.
            connector.issue_token = functools.cache(connector.issue_token)
            app = connector.app()
            app.middlewares.append(fields["posts"].middleware)
            # On its own thread, as the tests' teams_connector serves it: its handlers do not queue behind the load generator.
            connector.url = stack.enter_context(ThreadedServer(app)).url
            settings.update(HANDOFF_TEAMS__APP_ID=APP_ID, HANDOFF_TEAMS__APP_PASSWORD=APP_PASSWORD,
                            HANDOFF_TEAMS__LOGIN_URL=connector.url, HANDOFF_TEAMS__OPENID_METADATA_URL=connector.openid_metadata_url)
        argv = [sys.executable, "-m", "handoff.bot.cli", "serve", "--routing", str(routing_file), "--log-level", "WARNING"]
        child = await stack.enter_async_context(
            child_process(f"`handoff serve` ({chat})", argv, child_env(settings), port, workdir / f"{name}-serve.log"))
        served = Served(child, routing, http, odoo, Shelf(odoo), written, **fields)
        if chat == "teams":
            served.teams = TeamsDriver(connector, connector.service_url, routing, f"{child.url}/api/messages", http)
            # The app added to every bench channel: Handoff learns where to post from these installs.
            await served.teams.install()
        yield served
