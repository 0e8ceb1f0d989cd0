"""Scenario 5, the ceiling: a bare aiohttp handler, in its own process as Handoff is, doing one insert (SQLite WAL,
or PostgreSQL for that backend's run) and one chat.postMessage to the fake Slack.

Run as `python -m handoff.bot.bench.ceiling --port P --database DB --slack URL --token T`.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import psycopg
from aiohttp import web
from handoff.state.pg import is_postgres

from .load import Run, drive
from .process import child_env, child_process, free_port
from .routing import CEILING_CHANNEL

TABLE = "CREATE TABLE IF NOT EXISTS inbox (id {key}, body {blob} NOT NULL, at DOUBLE PRECISION NOT NULL)"


def _insert(database: str) -> Callable[[bytes], None]:
    """One autocommitted insert per call, paying what Handoff's store pays per commit on that backend."""
    if is_postgres(database):
        pg = psycopg.connect(database, autocommit=True)
        pg.execute(TABLE.format(key="BIGSERIAL PRIMARY KEY", blob="BYTEA"))
        return lambda body: pg.execute("INSERT INTO inbox (body, at) VALUES (%s, %s)", (body, time.time()))
    # The same pragmas as handoff.state.store.Store.
    conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(TABLE.format(key="INTEGER PRIMARY KEY", blob="BLOB"))
    return lambda body: conn.execute("INSERT INTO inbox (body, at) VALUES (?, ?)", (body, time.time()))


def ceiling_app(database: str, slack_api: str, token: str) -> web.Application:
    insert = _insert(database)
    session: aiohttp.ClientSession | None = None

    async def handle(request: web.Request) -> web.Response:
        insert(await request.read())
        # https://docs.slack.dev/reference/methods/chat.postMessage: bearer token, JSON body with channel and text.
        async with session.post(f"{slack_api}chat.postMessage", json={"channel": CEILING_CHANNEL, "text": "ceiling"},
                                headers={"Authorization": f"Bearer {token}"}) as answer:
            sent = await answer.json()
        return web.json_response({"ok": sent.get("ok", False)})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({})

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        nonlocal session
        session = aiohttp.ClientSession()
        yield
        await session.close()

    app = web.Application()
    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/webhook", handle)
    app.router.add_get("/healthz", healthz)
    return app


@asynccontextmanager
async def ceiling_process(workdir: Path, database: str | Path, slack_url: str, token: str) -> AsyncIterator[str]:
    """The bare handler in its own process, posting to the fake Slack at `slack_url`; yields its webhook URL."""
    port = free_port()
    argv = [sys.executable, "-m", "handoff.bot.bench.ceiling", "--port", str(port), "--database", str(database),
            "--slack", f"{slack_url}/api/", "--token", token]
    async with child_process("the ceiling handler", argv, child_env({}), port, workdir / "ceiling.log") as child:
        yield f"{child.url}/webhook"


async def measure(http: aiohttp.ClientSession, url: str, body: bytes, concurrency: int, duration_s: float, max_requests: int,
                  posted: dict[str, list]) -> Run:
    """The same load generator and client session as the Handoff scenarios, against the bare handler."""

    async def one(_: int) -> Mapping[str, float]:
        start = time.perf_counter()
        async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            answer = await response.json()
        if response.status != 200 or not answer.get("ok"):
            raise RuntimeError(f"the ceiling handler answered {response.status} {answer}")
        return {"card": (time.perf_counter() - start) * 1000}

    try:
        return await drive(one, concurrency=concurrency, duration_s=duration_s, max_requests=max_requests)
    finally:
        # The fake Slack keeps every message, and its chat.update looks messages up by scanning their channel.
        posted[CEILING_CHANNEL].clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m handoff.bot.bench.ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True, help="a SQLite file or a postgresql:// URL")
    parser.add_argument("--slack", required=True, help="the fake Slack's Web API base URL, ending in /api/")
    parser.add_argument("--token", required=True, help="the fake Slack's bot token")
    args = parser.parse_args(argv)
    web.run_app(ceiling_app(args.database, args.slack, args.token), host="127.0.0.1", port=args.port, access_log=None,
                print=None)


if __name__ == "__main__":
    main()
