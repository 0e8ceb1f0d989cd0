"""Scenarios 1 and 2 on a running local stack: ERP webhook → posted card, and signed Slack click → ack → decision."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web
from handoff.bot.core.models import Outcome
from handoff.bot.fakes.slack import FakeMessage
from handoff.bot.fakes.stack import LocalStack, button_binding

from .load import Run, drive
from .observe import REFERENCE, DecisionWatch, PostWatch, Shelf

APPROVER = "dana"  # a procurement manager who raised none of the bench orders (marc did)


class BenchFailed(Exception):
    """A request the benchmark sent did not do what the product promises; counted as an error of its level."""


@dataclass
class Flows:
    """The two Handoff flows over one local stack; cards made by scenario 1 are what scenario 2 clicks."""

    stack: LocalStack
    decisions: DecisionWatch
    shelf: Shelf = field(init=False)
    posts: PostWatch = field(init=False)
    cards: list[tuple[int, str]] = field(default_factory=list)  # (order id, reference), oldest first

    def __post_init__(self) -> None:
        self.shelf = Shelf(self.stack.odoo)
        self.posts = PostWatch.install(self.stack.slack)

    async def webhook_to_card(self, _: int) -> Mapping[str, float]:
        """One new order: Odoo posts its webhook; done when the card reaches the fake Slack's chat.postMessage."""
        order_id, name = self.shelf.add()
        posted = self.posts.expect(name)
        start = time.perf_counter()
        status, body = await self.stack.post_webhook(self.stack.odoo.webhook_body(order_id))
        if status != 200 or body.get("status") != "accepted":
            raise BenchFailed(f"the webhook for {name} was answered {status} {body}")
        at, _ = await posted
        self.shelf.park(order_id)
        self.cards.append((order_id, name))
        return {"card": (at - start) * 1000}

    async def event_to_card(self, concurrency: int, duration_s: float, max_requests: int) -> Run:
        return await drive(self.webhook_to_card, concurrency=concurrency, duration_s=duration_s, max_requests=max_requests)

    async def click_to_ack(self, concurrency: int, duration_s: float, wanted: int) -> Run:
        """Approve `wanted` waiting cards (made first, unmeasured, if there are too few), as signed block_actions."""
        if len(self.cards) < wanted:
            await drive(self.webhook_to_card, concurrency=32, duration_s=600, max_requests=wanted - len(self.cards))
        batch, self.cards = self.cards[:wanted], self.cards[wanted:]
        posted = _by_reference(self.stack, {name for _, name in batch})

        async def click(index: int) -> Mapping[str, float]:
            order_id, name = batch[index]
            card = posted[name]
            self.shelf.unpark(order_id)
            decided = self.decisions.expect(button_binding(card, "handoff.approve")["r"])
            start = time.perf_counter()
            status, text = await self.stack.click(APPROVER, card, "handoff.approve")
            acked = time.perf_counter()
            if status != 200:
                raise BenchFailed(f"the click on {name} was answered {status} {text[:200]}")
            at, outcome = await decided
            if outcome != Outcome.REQUEST_DECIDED.value:
                raise BenchFailed(f"the click on {name} ended as {outcome}, not {Outcome.REQUEST_DECIDED.value}")
            self.shelf.park_when_written(order_id)
            return {"ack": (acked - start) * 1000, "decided": (at - start) * 1000}

        return await drive(click, concurrency=concurrency, duration_s=duration_s, max_requests=len(batch))


def _by_reference(stack: LocalStack, wanted: set[str]) -> dict[str, FakeMessage]:
    """The posted cards for the `wanted` references, from every channel of the fake Slack."""
    found = {}
    for message in (m for channel in stack.slack.messages.values() for m in channel):
        match = REFERENCE.search(message.text) if message.thread_ts is None else None
        if match and match.group(0) in wanted:
            found[match.group(0)] = message
    return found


def teams_status(app: web.Application) -> str:
    """Whether the Teams endpoint is wired into the app, said as the bench output reports it."""
    wired = any(getattr(route.resource, "canonical", "") == "/api/messages" for route in app.router.routes())
    if wired:
        return "skipped: /api/messages is wired, but local_stack configures no Teams and the bench has no Bot Connector driver yet"
    return "skipped: Teams (bot/channels/teams.py) is not wired into the app yet, so there is nothing to invoke"
