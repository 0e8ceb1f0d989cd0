"""A real `handoff serve` process against fake Odoo and Slack served by the test: start it, kill it, start it again."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from handoff.bot.core.ports import SystemClock
from handoff.bot.fakes.odoo import FakeOdoo
from handoff.bot.fakes.odoo_seed import demo_seed
from handoff.bot.fakes.slack import FakeMessage, FakeSlack, SlackSigner
from handoff.bot.fakes.stack import SAMPLE_ROUTING, serve
from handoff.bot.routing_file import load_routing

SIGNING_SECRET = "crash-test-signing-secret"
WEBHOOK_SECRET = "crash-test-webhook-secret"
KILLED = 137  # what handoff.bot.faults exits with, as a shell reports SIGKILL
STATUS_LOST = 255  # what asyncio reports for a child whose exit status it could not collect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Fakes:
    """Fake Odoo and Slack on loopback in the test's own loop, outliving every Handoff process."""

    odoo: FakeOdoo
    slack: FakeSlack
    orders: dict[str, int]
    urls: dict[str, str]
    routing = load_routing(SAMPLE_ROUTING)
    signer: SlackSigner = field(init=False)

    def __post_init__(self) -> None:
        self.signer = SlackSigner(SIGNING_SECRET, SystemClock(), self.slack.workspace)

    def env(self, database: Path | str, port: int) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")},
            "HANDOFF_DATABASE": str(database), "HANDOFF_HOST": "127.0.0.1", "HANDOFF_PORT": str(port),
            "HANDOFF_ROUTING": str(SAMPLE_ROUTING), "HANDOFF_OUTBOX_LEASE_S": "1", "HANDOFF_INBOX_LEASE_S": "1",
            "HANDOFF_SLACK__BOT_TOKEN": self.slack.token, "HANDOFF_SLACK__SIGNING_SECRET": SIGNING_SECRET,
            "HANDOFF_SLACK__API_BASE_URL": f"{self.urls['slack']}/api/",
            "HANDOFF_ODOO__URL": self.urls["odoo"], "HANDOFF_ODOO__DATABASE": self.odoo.database,
            "HANDOFF_ODOO__LOGIN": self.odoo.api_login, "HANDOFF_ODOO__API_KEY": self.odoo.api_key,
            "HANDOFF_ODOO__WEBHOOK_SECRET": WEBHOOK_SECRET,
        }

    def cards(self, channel: str, reference: str) -> list[FakeMessage]:
        return [m for m in self.slack.messages.get(channel, []) if m.thread_ts is None and reference in m.text]


@asynccontextmanager
async def fakes():
    slack = FakeSlack()
    routing = Fakes.routing
    for name, channel in routing.channels.items():
        if channel.slack:
            slack.add_channel(channel.slack, name)
    for key, person in routing.people.items():
        if person.slack:
            slack.add_user(person.slack, key)
    odoo = FakeOdoo()
    orders = demo_seed(odoo)
    odoo_runner, odoo_url = await serve(odoo.app)
    slack_runner, slack_url = await serve(slack.app)
    try:
        yield Fakes(odoo, slack, orders, {"odoo": odoo_url, "slack": slack_url})
    finally:
        await slack_runner.cleanup()
        await odoo_runner.cleanup()


@dataclass
class Handoff:
    """One `handoff serve` process; `crash_at` arms the fault-injection point in handoff.bot.faults."""

    fakes: Fakes
    database: Path | str  # a SQLite file, or a postgresql:// URL several processes share
    http: aiohttp.ClientSession
    logs: Path | None = None  # the SQLite file's folder unless given
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, crash_at: str | None = None) -> None:
        env = self.fakes.env(self.database, self.port)
        if crash_at:
            env["HANDOFF_CRASH_AT"] = crash_at
        self.log_path = self.log_folder / f"handoff-{self.port}.{crash_at or 'clean'}.log"
        log = open(self.log_path, "ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "handoff.bot.cli", "serve", stdout=log, stderr=log, env=env)
        await self._wait_healthy(deadline=time.monotonic() + 30)

    @property
    def log_folder(self) -> Path:
        return self.logs or Path(self.database).parent

    async def _wait_healthy(self, deadline: float) -> None:
        """Poll /healthz until it answers 200, the process exits, or the deadline passes."""
        while True:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"handoff serve exited with {self.process.returncode}; logs in {self.log_folder}")
            try:
                async with self.http.get(f"{self.url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"handoff serve did not answer /healthz within 30s; logs in {self.log_folder}")
            await asyncio.sleep(0.05)

    async def died(self, timeout: float = 30) -> int:
        """Wait for the process to die by itself (an armed crash point); its exit status."""
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if code == STATUS_LOST and b"fault.injected" in self.log_path.read_bytes():
            # asyncio reports 255 when the child's status was reaped elsewhere ("Unknown child process pid ... will
            # report returncode 255", seen under load); the process's own last log line says where it died.
            return KILLED
        return code

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as systemd or Kubernetes stop a service; the exit status once it has drained and exited."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def send_order(self, reference: str) -> int | None:
        """POST the order's webhook as Odoo does; None when the connection died with the server."""
        body = self.fakes.odoo.webhook_body(self.fakes.orders[reference])
        try:
            async with self.http.post(f"{self.url}/webhooks/odoo?key={WEBHOOK_SECRET}", data=body,
                                      headers={"Content-Type": "application/json"}) as response:
                return response.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None

    async def click(self, person: str, card: FakeMessage, action_id: str) -> int | None:
        fakes = self.fakes
        button = next(e for b in card.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id)
        user = fakes.routing.people[person].slack or ""
        body = fakes.signer.block_actions_body(user, person, card.channel, card.ts, action_id, button["value"],
                                               message=card.wire(fakes.slack.workspace))
        headers = {"Content-Type": "application/x-www-form-urlencoded", **fakes.signer.sign(body)}
        try:
            async with self.http.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
                return response.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None
