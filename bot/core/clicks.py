"""Clicks stored before they are acknowledged: acted on at once, acted on again after a crash, counted once.

A chat platform that got its 200 never resends the click, so a click lost between the answer and the decision would
vanish without a word to the approver (issue #7). The click is kept in the inbox first, in one short transaction;
the decision settles it in its own transaction (act.py), and the worker acts on what a dead process left unsettled.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from .context import Core
from .lanes import in_lanes
from .models import Action, ActionResult, Frozen, Outcome
from .ports import Approvals

log = logging.getLogger(__name__)

# Clicks on different requests are replayed side by side, this many at a time; one request's stay in order.
LANES = 8

KEPT_FOR_LATER = ("Handoff's database is unreachable right now. Your decision is saved and Handoff counts it as soon "
                  "as the database answers again; you need not click again.")


class StoredClick(Frozen):
    """A click as kept before the answer: the verified actor and the card's binding, and where to answer them."""

    key: str  # names this one click, so a second delivery of it is kept once
    action: Action
    reply_to: str | None = None  # the conversation where the person who clicked is answered privately


Answer = Callable[[StoredClick, ActionResult], Awaitable[None]]


class ClickInbox:
    """Keeps clicks, acts on them, and replays the ones nobody finished."""

    def __init__(self, core: Core, approvals: Approvals, answer: Answer) -> None:
        self.core = core
        self.approvals = approvals
        self.answer = answer
        # Clicks this process is acting on: the worker's replay leaves them to the task that has them.
        self._in_hand: set[int] = set()

    def keep(self, click: StoredClick) -> int | None:
        """Store the click (one insert, one commit); its inbox id, or None for a delivery already kept."""
        action = click.action
        inbox_id = self.core.store.keep_click(click.key, action.actor.platform, action.request_id, click.model_dump_json(),
                                              self.core.clock.now())
        if inbox_id is not None:
            self._in_hand.add(inbox_id)
        return inbox_id

    async def handle(self, inbox_id: int | None, click: StoredClick) -> None:
        """Act on the click and answer the person; a click that could not be stored (None) is acted on all the same."""
        try:
            action = click.action if inbox_id is None else click.action.model_copy(update={"inbox_id": inbox_id})
            result = await self.approvals.act(action)
            if inbox_id is not None and result.outcome is Outcome.STORE_UNREACHABLE:
                # It stays pending: the worker acts on it again once the database answers.
                result = ActionResult(outcome=Outcome.STORE_UNREACHABLE, message=KEPT_FOR_LATER)
            elif inbox_id is not None:
                # Refusals and outcomes that record nothing settle here; a counted decision settled in its transaction.
                first = self.core.store.settle_click(inbox_id, result.outcome.value)
                if not first and result.outcome is Outcome.ALREADY_DECIDED:
                    # Another run of this very click (a replica whose lease ran out) counted it and answers for it.
                    log.info("click.duplicate", extra={"request_id": action.request_id, "verb": action.verb.value})
                    return
            await self.answer(click, result)
        finally:
            if inbox_id is not None:
                self._in_hand.discard(inbox_id)

    async def drain(self, limit: int = 50) -> int:
        """Act on stored clicks that were never finished (their process died, or its lease ran out); how many."""
        due = [(inbox_id, StoredClick.model_validate_json(click))
               for inbox_id, click in self.core.store.due_clicks(self.core.clock.now(), limit) if inbox_id not in self._in_hand]
        for inbox_id, click in due:
            self._in_hand.add(inbox_id)
            log.info("click.replayed", extra={"request_id": click.action.request_id, "verb": click.action.verb.value})
        await in_lanes(due, lambda item: item[1].action.request_id, lambda item: self.handle(*item), LANES)
        return len(due)
