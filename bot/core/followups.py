"""Work promised after an answer: a chat platform gets its HTTP reply at once, and what the click asked for follows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Followups:
    """Runs each piece of work as its own task and keeps it until done, so a stop can wait for it and tests can tell
    when everything a click started has finished."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task] = set()

    def start(self, work: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.create_task(self._logged(work, what), name=f"followup: {what}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def busy(self) -> bool:
        return bool(self._running)

    async def finish(self, grace_s: float) -> None:
        """Wait up to `grace_s` for the work under way; what is still running then is cancelled."""
        if not self._running:
            return
        _, late = await asyncio.wait(set(self._running), timeout=grace_s)
        for task in late:
            task.cancel()
        if late:
            log.warning("followups.cancelled", extra={"count": len(late), "grace_s": grace_s})

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await work
        except Exception:
            # Nobody awaits this task: without the log a failed follow-up would vanish.
            log.exception("followup.failed", extra={"what": what})
