"""Scenarios 1 and 2 against Handoff in its own process: ERP webhook → posted card, and signed click → ack → decision."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .load import Run, drive
from .served import Served

MEASURED = {
    "card": "Odoo webhook POST until the fake chat receives the card (Slack chat.postMessage, Teams POST activities)",
    "ack": "signed click (Slack block_actions, Teams adaptiveCard/action invoke) until Handoff's HTTP answer",
    "decided": "the same click until the fake Odoo has answered Handoff's button_approve (the decision written back; "
               "the decision log append and the drift re-read come before it)",
}


class BenchFailed(Exception):
    """A request the benchmark sent did not do what the product promises; counted as an error of its level."""


@dataclass
class Flows:
    """The two Handoff flows over one `handoff serve` process; cards made by scenario 1 are what scenario 2 clicks."""

    served: Served
    cards: list[tuple[int, str, Any]] = field(default_factory=list)  # (order id, reference, where posted), oldest first

    async def webhook_to_card(self, _: int) -> Mapping[str, float]:
        """One new order: Odoo posts its webhook; done when the card reaches the fake chat."""
        served = self.served
        order_id, name = served.shelf.add()
        posted = served.posts.expect(name)
        start = time.perf_counter()
        status, body = await served.post_webhook(served.odoo.webhook_body(order_id))
        if status != 200 or body.get("status") != "accepted":
            raise BenchFailed(f"the webhook for {name} was answered {status} {body}")
        at, where = await posted
        served.shelf.park(order_id)
        self.cards.append((order_id, name, where))
        return {"card": (at - start) * 1000}

    async def event_to_card(self, concurrency: int, duration_s: float, max_requests: int) -> Run:
        return await drive(self.webhook_to_card, concurrency=concurrency, duration_s=duration_s, max_requests=max_requests)

    async def click_to_ack(self, concurrency: int, duration_s: float, wanted: int) -> Run:
        """Approve `wanted` waiting cards (made first, unmeasured, if there are too few)."""
        if len(self.cards) < wanted:
            await drive(self.webhook_to_card, concurrency=32, duration_s=600, max_requests=wanted - len(self.cards))
        batch, self.cards = self.cards[:wanted], self.cards[wanted:]
        served = self.served
        posted = served.cards((name, where) for _, name, where in batch)

        async def click(index: int) -> Mapping[str, float]:
            order_id, name, _ = batch[index]
            served.shelf.unpark(order_id)
            decided = served.written.expect(order_id)
            start = time.perf_counter()
            status, text = await served.approve(posted[name])
            acked = time.perf_counter()
            if not served.acknowledged(status, text):
                raise BenchFailed(f"the click on {name} was answered {status} {text[:200]}")
            at, _ = await decided
            served.shelf.park_when_written(order_id)
            return {"ack": (acked - start) * 1000, "decided": (at - start) * 1000}

        return await drive(click, concurrency=concurrency, duration_s=duration_s, max_requests=len(batch))
