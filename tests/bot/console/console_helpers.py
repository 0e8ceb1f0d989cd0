"""Console test helpers: a browser-like HTTP session and the text a reader sees."""

from __future__ import annotations

import html
import re
from datetime import time

import aiohttp

from handoff.bot.app import WORKER
from handoff.bot.core.calendar import DAY_NAMES, BusinessCalendar
from handoff.bot.core.route import RoutingConfig
from handoff.state import outbox

TOKEN = "console-admin-token-for-tests"


class Browser:
    """Cookies and redirects as a browser handles them; `csrf` is read off the last page, as a form would carry it."""

    def __init__(self, base: str) -> None:
        # unsafe=True: the stack listens on 127.0.0.1, and aiohttp's jar ignores cookies for bare IPs otherwise.
        self.http = aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(path) as response:
            text = await response.text()
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        self.csrf = found.group(1) if found else self.csrf
        return response.status, text

    async def post(self, path: str, form: dict, *, redirects: bool = True) -> tuple[int, str]:
        async with self.http.post(path, data=form, allow_redirects=redirects) as response:
            return response.status, await response.text()

    async def sign_in(self, token: str = TOKEN) -> None:
        status, _ = await self.post("/console/login", {"token": token, "next": "/console/"})
        assert status == 200


def text_of(page: str) -> str:
    """What a reader sees: tags dropped, whitespace folded, entities left as the browser would show them."""
    body = re.sub(r"<head>.*?</head>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def pump(stack, clock, seconds: float = 0.25):
    """A wait condition that also moves the injected clock, so rate-limited posts (1 per second per channel) go out."""
    def condition() -> bool:
        if outbox.depth(stack.store.conn).get("pending"):
            clock.advance(seconds=seconds)
            stack.app[WORKER].wake()
            return False
        return stack.app[WORKER].is_settled()

    return condition


def always_open(routing: RoutingConfig) -> RoutingConfig:
    """The same routing on a calendar that never closes, so SLA hours are wall-clock hours whatever day the test runs."""
    calendar = BusinessCalendar(working_days=DAY_NAMES, start=time(0), end=time(23, 59, 59))
    return routing.model_copy(update={"calendars": {"always": calendar},
                                      "defaults": routing.defaults.model_copy(update={"calendar": "always"})})
