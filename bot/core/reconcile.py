"""Reconcile: poll each ERP for approval-relevant changes the webhooks missed, and feed them to the same inbox."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from handoff.state import cursor_store

from .context import Core
from .effects import Effects
from .errors import HandoffError
from .models import SourceEvent
from .route import ops_target

log = logging.getLogger(__name__)

# A re-sync after an expired cursor takes rows modified since the cursor was last stored, less this: the ERP's clock
# and Handoff's may disagree, and a row saved while that poll ran may have missed its token.
RESYNC_MARGIN = timedelta(hours=1)


class CursorExpired(HandoffError):
    """The ERP no longer answers for a cursor it issued (a Dataverse delta token past its retention); `restart(since)` is
    the cursor to poll from instead: a fresh initial read in which only rows modified since `since` (None: every row)
    become events, so rows the expired cursor already covered are not re-read."""

    def __init__(self, message: str, restart: Callable[[datetime | None], str]) -> None:
        super().__init__(message)
        self.restart = restart


@runtime_checkable
class Polled(Protocol):
    """A connector that can list what changed since a cursor it issued (Odoo's write_date; Dataverse's delta links)."""

    async def changed_since(self, cursor: str | None, now: datetime) -> tuple[list[SourceEvent], str | None]: ...


class Reconciler:
    """Every `every`, asks each pollable ERP what changed since its stored cursor; the inbox dedups what webhooks saw."""

    def __init__(self, core: Core, every: timedelta = timedelta(minutes=5)) -> None:
        self.core = core
        self.every = every
        # The first poll waits one interval: at start-up the webhooks are the fresher source.
        self._next_at = core.clock.now() + every

    async def maybe_tick(self) -> int:
        """Run a tick when one is due by the core's clock; returns how many new events it stored."""
        now = self.core.clock.now()
        if now < self._next_at:
            return 0
        self._next_at = now + self.every
        return await self.tick()

    async def tick(self) -> int:
        """Poll every ERP once now; returns how many changes were new to the inbox."""
        fresh = 0
        for source, connector in self.core.connectors.items():
            if isinstance(connector, Polled):
                fresh += await self._poll(source, connector)
        if fresh:
            self.core.wake()
        return fresh

    async def _poll(self, source: str, connector: Polled) -> int:
        store, now = self.core.store, self.core.clock.now()
        cursor = cursor_store.get(store.conn, source)
        try:
            events, next_cursor = await connector.changed_since(cursor, now)
        except CursorExpired as error:
            self._restart(source, cursor, error)
            # The restart cursor holds no expired link, so the second poll cannot expire the same way.
            return await self._poll(source, connector)
        except HandoffError as error:
            # The cursor stays put, so the next tick asks for the same window again: nothing is skipped.
            log.warning("reconcile.poll_failed", extra={"source": source, "error": str(error)})
            return 0
        fresh = sum(1 for event in events if store.accept_event(event)[1])
        if next_cursor is not None and next_cursor != cursor:
            with store.transaction() as conn:
                cursor_store.put(conn, source, next_cursor, now)
        log.info("reconcile.polled", extra={"source": source, "changes": len(events), "new": fresh, "cursor": next_cursor})
        return fresh

    def _restart(self, source: str, cursor: str | None, error: CursorExpired) -> None:
        """Log it, tell operations once per expired cursor, and store the cursor the ERP says to start again from."""
        log.warning("reconcile.cursor_expired", extra={"source": source})
        expired = hashlib.sha256((cursor or "").encode()).hexdigest()[:16]
        now, stored = self.core.clock.now(), cursor_store.stored_at(self.core.store.conn, source)
        restart = error.restart(stored - RESYNC_MARGIN if stored else None)
        with self.core.store.transaction() as conn:
            Effects(conn, now).notify(ops_target(self.core.routing, self.core.routing.defaults.platform), str(error),
                                      key=f"cursor-expired:{source}:{expired}")
            cursor_store.put(conn, source, restart, now)
        self.core.wake()
