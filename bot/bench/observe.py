"""How the benchmark sees work finish from outside Handoff, without polling: what the fakes of Slack, the Bot
Connector and Odoo receive from it."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from handoff.bot.fakes.odoo import FakeOdoo
from handoff.bot.fakes.slack import FakeSlack

from .routing import amount_for

# Bench orders are named BX000001…: distinct from the demo's P000xx, and easy to find in a card's text.
REFERENCE = re.compile(r"BX\d{6}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reference(number: int) -> str:
    return f"BX{number:06d}"


class _Waiters:
    """Futures keyed by name, resolved with (time.perf_counter(), detail) when the awaited thing happens."""

    def __init__(self) -> None:
        self._waiting: dict[Any, asyncio.Future] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def expect(self, key: Any) -> asyncio.Future:
        self._loop = asyncio.get_running_loop()
        future = self._loop.create_future()
        self._waiting[key] = future
        return future

    def resolve(self, key: Any, detail: Any = None, at: float | None = None) -> None:
        future = self._waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result((at or time.perf_counter(), detail))

    def resolve_from_thread(self, key: Any, detail: Any = None) -> None:
        """For fakes served on their own thread: the moment is taken there, the future is resolved on the bench's loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.resolve, key, detail, time.perf_counter())


class PostWatch(list, _Waiters):
    """Stands in for `FakeSlack.calls`: notes when each bench card's chat.postMessage arrives, and keeps nothing,
    so a long run does not grow the fake (FakeSlack appends every call to `calls` as it receives it)."""

    def __init__(self) -> None:
        list.__init__(self)
        _Waiters.__init__(self)

    def append(self, call: tuple[str, dict]) -> None:
        method, args = call
        if method == "chat.postMessage" and not args.get("thread_ts"):
            found = REFERENCE.search(str(args.get("text") or ""))
            if found:
                self.resolve(found.group(0))

    @classmethod
    def install(cls, slack: FakeSlack) -> PostWatch:
        slack.calls = watch = cls()
        return watch


class TeamsPostWatch(_Waiters):
    """A middleware for the fake Bot Connector: resolves a reference with (conversation, activity id) when a new card
    naming it is stored (POST .../activities answered 201, not a reply)."""

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.method == "POST" and "activity" not in request.match_info and response.status == 201 and "conversation" in request.match_info:
            sent = await request.json()
            found = REFERENCE.search(json.dumps(sent.get("attachments") or []))
            if found:
                stored = json.loads(response.body)
                self.resolve_from_thread(found.group(0), (request.match_info["conversation"], stored["id"]))
        return response


class WriteBackWatch(_Waiters):
    """A middleware for the fake Odoo: resolves an order id when Handoff's `button_approve` for it was answered 200,
    the decision written back as the ERP's user would see it."""

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if response.status == 200 and request.path == "/json/2/purchase.order/button_approve":
            for order_id in (await request.json()).get("ids") or []:
                self.resolve(order_id)
        return response

    def install(self, odoo: FakeOdoo) -> WriteBackWatch:
        odoo.app.middlewares.append(self.middleware)
        return self


class Shelf:
    """Bench purchase orders in the fake Odoo. The fake's searches scan every record, so orders out of play are
    taken off its tables; otherwise a long run would measure the fake's growing scans instead of Handoff."""

    def __init__(self, odoo: FakeOdoo) -> None:
        self.odoo = odoo
        self.numbers = iter(range(1, 1_000_000))
        self._parked: dict[int, tuple[dict, dict[int, dict]]] = {}
        self._writing: list[int] = []

    def add(self) -> tuple[int, str]:
        """A fresh order awaiting approval, raised by marc, in the next bench channel's amount tier."""
        number = next(self.numbers)
        name = reference(number)
        order_id = self.odoo.add_purchase_order(name=name, vendor="Bench Supplies", requester_login="marc@example.com",
                                                lines=[("Cordless drill 18V", 1, amount_for(number))])
        return order_id, name

    def park(self, order_id: int, keep: bool = True) -> None:
        records = self.odoo.db.records
        order = records["purchase.order"].pop(order_id)
        lines = {lid: records["purchase.order.line"].pop(lid) for lid, line in list(records["purchase.order.line"].items())
                 if line["order_id"] == order_id}
        if keep:
            self._parked[order_id] = (order, lines)

    def unpark(self, order_id: int) -> None:
        order, lines = self._parked.pop(order_id)
        self.odoo.db.records["purchase.order"][order_id] = order
        self.odoo.db.records["purchase.order.line"].update(lines)

    def park_when_written(self, order_id: int) -> None:
        """Handoff writes the decision back after the click is answered; its last step is a chatter note, so an
        order is taken off the tables (note included) only once that note is there."""
        self._writing.append(order_id)
        messages = self.odoo.db.records["mail.message"]
        noted = {mid: m["res_id"] for mid, m in messages.items() if m["model"] == "purchase.order" and m["res_id"] in self._writing}
        for message_id, written in noted.items():
            del messages[message_id]
            self._writing.remove(written)
            self.park(written, keep=False)
