"""The operations console at /console: aging board, request narratives, process intelligence, outbox and routing."""

from __future__ import annotations

from aiohttp import web

from handoff.bot.core.context import Core

from .auth import ConsoleAuth, guard, login_routes
from .board import aging_board
from .context import CONSOLE, Console
from .insights import insights_page
from .operate import outbox_page, retry_item, routing_page
from .request_page import request_page
from .settings import ConsoleSettings

__all__ = ["ConsoleSettings", "register_console"]


def register_console(app: web.Application, settings: ConsoleSettings, core_key: web.AppKey[Core], public_url: str = "") -> None:
    """Mount the console under /console; pages read the Core that `core_key` holds once the app has started."""
    auth = ConsoleAuth(settings, secure_cookie=public_url.startswith("https://"))
    console = web.Application(middlewares=[guard(auth)])
    console[CONSOLE] = Console(core_key, auth)
    console.add_routes([
        *login_routes(auth),
        web.get("/", aging_board),
        web.get("/requests/{request_id}", request_page),
        web.get("/insights", insights_page),
        web.get("/outbox", outbox_page),
        web.post("/outbox/{item_id}/retry", retry_item),
        web.get("/routing", routing_page),
        web.post("/routing", routing_page),
    ])
    app.router.add_get("/console", _to_console)
    app.add_subapp("/console", console)


async def _to_console(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/console/")
