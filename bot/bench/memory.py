"""Scenario 4, memory: the RSS of a real `handoff serve` process, idle and after many requests, against the local fakes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from handoff.bot.core.ports import SystemClock
from handoff.bot.fakes.odoo import FakeOdoo
from handoff.bot.fakes.odoo_seed import demo_seed
from handoff.bot.fakes.stack import SIGNING_SECRET, WEBHOOK_SECRET, fake_slack_for, serve

from .load import drive
from .observe import PostWatch, Shelf
from .routing import write_routing


def rss_mb(pid: int) -> float:
    """VmRSS of a process, from /proc/<pid>/status (what the process itself reads as /proc/self/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line; the memory scenario needs Linux's procfs.")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Served:
    """A `handoff serve` child process and the fakes it talks to."""

    process: asyncio.subprocess.Process
    url: str
    odoo: FakeOdoo
    shelf: Shelf
    posts: PostWatch
    slack_messages: dict
    log: Path


@asynccontextmanager
async def handoff_process(workdir: Path) -> AsyncIterator[Served]:
    """Fake Odoo and Slack in this process; Handoff in its own, so its RSS holds Handoff alone."""
    routing_file = workdir / "bench-routing.toml"
    routing = write_routing(routing_file)
    odoo = FakeOdoo()
    demo_seed(odoo)
    slack = fake_slack_for(routing, SystemClock())
    posts = PostWatch.install(slack)
    (odoo_runner, odoo_url), (slack_runner, slack_url) = await serve(odoo.app), await serve(slack.app)
    port = _free_port()
    env = {**os.environ, "HANDOFF_DATABASE": str(workdir / "memory.db"), "HANDOFF_PORT": str(port), "HANDOFF_HOST": "127.0.0.1",
           "HANDOFF_SLACK__BOT_TOKEN": slack.token, "HANDOFF_SLACK__SIGNING_SECRET": SIGNING_SECRET,
           "HANDOFF_SLACK__API_BASE_URL": f"{slack_url}/api/", "HANDOFF_ODOO__URL": odoo_url, "HANDOFF_ODOO__DATABASE": odoo.database,
           "HANDOFF_ODOO__LOGIN": odoo.api_login, "HANDOFF_ODOO__API_KEY": odoo.api_key, "HANDOFF_ODOO__WEBHOOK_SECRET": WEBHOOK_SECRET}
    log = workdir / "handoff-serve.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "handoff.bot.cli", "serve", "--routing", str(routing_file), "--log-level", "WARNING",
            env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        served = Served(process, f"http://127.0.0.1:{port}", odoo, Shelf(odoo), posts, slack.messages, log)
        await _until_healthy(served, lambda health: True, timeout=30)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        await odoo_runner.cleanup()
        await slack_runner.cleanup()


async def _until_healthy(served: Served, settled: Callable[[Mapping], bool], timeout: float) -> None:
    """Poll /healthz until it answers and `settled` holds, with a deadline; name the child's log if it died."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if served.process.returncode is not None:
                tail = served.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"`handoff serve` exited with {served.process.returncode} during the memory scenario:\n{tail}")
            try:
                async with http.get(f"{served.url}/healthz") as answer:
                    if answer.status == 200 and settled(await answer.json()):
                        return
            except aiohttp.ClientError:
                pass  # not listening yet
            if time.monotonic() >= deadline:
                raise TimeoutError(f"`handoff serve` did not become healthy and settled within {timeout}s; see {served.log}")
            await asyncio.sleep(0.05)


def _settled(health: Mapping) -> bool:
    return not health.get("inbox", {}).get("pending") and not health.get("outbox", {}).get("pending")


async def measure(workdir: Path, requests: int, progress: Callable[[str], None]) -> dict:
    """RSS idle, after half and after all of `requests` webhook → card flows, at concurrency 32."""
    async with handoff_process(workdir) as served, aiohttp.ClientSession() as http:
        pid = served.process.pid
        result: dict = {"requests": requests, "idle_mb": round(rss_mb(pid), 1), "process": "handoff serve (its own process)"}
        hook = f"{served.url}/webhooks/odoo?key={WEBHOOK_SECRET}"

        async def one(index: int) -> Mapping[str, float]:
            order_id, name = served.shelf.add()
            posted = served.posts.expect(name)
            async with http.post(hook, data=served.odoo.webhook_body(order_id), headers={"Content-Type": "application/json"}) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"the webhook for {name} was answered {answer.status}")
            await posted
            served.shelf.park(order_id, keep=False)
            if index % 1000 == 0:
                # The fake Slack keeps every message; the bench drops them so its own memory stays flat too.
                for kept in served.slack_messages.values():
                    kept.clear()
            return {}

        # Ten slices, each run to a settled worker before RSS is read: the curve shows growth that never comes back.
        done, errors, curve, first_error = 0, 0, [], None
        slices = [requests * k // 10 - requests * (k - 1) // 10 for k in range(1, 11)]
        for count in (c for c in slices if c):
            run = await drive(one, concurrency=32, duration_s=max(120.0, count / 5), max_requests=count)
            done, errors, first_error = done + run.completed, errors + run.errors, first_error or run.first_error
            await _until_healthy(served, _settled, timeout=60)
            curve.append((done, round(rss_mb(pid), 1)))
            progress(f"  memory: {done:,}/{requests:,} requests, RSS {curve[-1][1]:.0f} MB")
        half = min(curve, key=lambda point: abs(point[0] - done / 2))
        result.update(after_mb=curve[-1][1], completed=done, errors=errors, first_error=first_error, curve=[{"requests": n, "rss_mb": mb} for n, mb in curve],
                      growth_kb_per_request_second_half=round((curve[-1][1] - half[1]) * 1024 / max(1, done - half[0]), 3))
        return result
