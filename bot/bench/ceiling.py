"""Scenario 5, the ceiling: a bare aiohttp handler doing one SQLite WAL insert and one chat.postMessage to the fake."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from handoff.bot.fakes.stack import LocalStack, serve

from .load import Run, drive
from .routing import CEILING_CHANNEL


def _ceiling_app(database: Path, slack_api: str, token: str) -> web.Application:
    # The same pragmas as handoff.state.store.Store, so the ceiling pays what Handoff pays per commit.
    conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, body BLOB NOT NULL, at REAL NOT NULL)")
    session: aiohttp.ClientSession | None = None

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        conn.execute("INSERT INTO inbox (body, at) VALUES (?, ?)", (body, time.time()))
        # https://docs.slack.dev/reference/methods/chat.postMessage: bearer token, JSON body with channel and text.
        async with session.post(f"{slack_api}chat.postMessage", json={"channel": CEILING_CHANNEL, "text": "ceiling"},
                                headers={"Authorization": f"Bearer {token}"}) as answer:
            sent = await answer.json()
        return web.json_response({"ok": sent.get("ok", False)})

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        nonlocal session
        session = aiohttp.ClientSession()
        yield
        await session.close()
        conn.close()

    app = web.Application()
    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/webhook", handle)
    return app


@asynccontextmanager
async def ceiling(stack: LocalStack, database: Path) -> AsyncIterator[str]:
    """The bare handler on loopback, posting to the stack's fake Slack; yields its URL."""
    runner, url = await serve(_ceiling_app(database, f"{stack.urls['slack']}/api/", stack.slack.token))
    try:
        yield f"{url}/webhook"
    finally:
        await runner.cleanup()


async def measure(stack: LocalStack, url: str, body: bytes, concurrency: int, duration_s: float, max_requests: int) -> Run:
    """The same load generator and client session as the Handoff scenarios, against the bare handler."""

    async def one(_: int) -> Mapping[str, float]:
        start = time.perf_counter()
        async with stack.http.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            answer = await response.json()
        if response.status != 200 or not answer.get("ok"):
            raise RuntimeError(f"the ceiling handler answered {response.status} {answer}")
        return {"card": (time.perf_counter() - start) * 1000}

    try:
        return await drive(one, concurrency=concurrency, duration_s=duration_s, max_requests=max_requests)
    finally:
        # The fake Slack keeps every message, and its chat.update looks messages up by scanning their channel.
        stack.slack.messages[CEILING_CHANNEL].clear()
