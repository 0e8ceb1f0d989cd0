"""Serve an aiohttp app from its own thread and event loop, for clients that make blocking HTTP calls."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from aiohttp import web


class ThreadedServer:
    """A loopback server on a private loop.

    botbuilder fetches OpenID keys with `requests` and client-credential tokens synchronously, on the
    caller's event loop; a fake served on that same loop could never answer, so fakes it talks to run here.
    """

    def __init__(self, app: web.Application, host: str = "127.0.0.1") -> None:
        self.app = app
        self.host = host
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-server", daemon=True)
        self._runner = web.AppRunner(app, access_log=None)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.url = f"http://{self.host}:{self._runner.addresses[0][1]}"

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
