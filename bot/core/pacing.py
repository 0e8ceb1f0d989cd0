"""Pacing: each destination's published send limits, so a burst goes out at the limit without a single 429."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .ports import Clock


# One lane ("teams.post:19:a@thread.tacv2"), or several an item touches at once (a card edit in two conversations).
Destination = str | tuple[str, ...]


@dataclass(frozen=True)
class Limit:
    """At most `calls` in any `per_seconds` window, as the platform states it."""

    calls: int
    per_seconds: float


# Sources, checked 2026-11: Slack https://docs.slack.dev/apis/web-api/rate-limits ("chat.postMessage generally
# allows posting one message per second per channel"; chat.update is Tier 3, 50+ per minute; the workspace-wide
# postMessage limit has no published number, so a 429 from it pauses the destination by its Retry-After);
# Teams https://learn.microsoft.com/microsoftteams/platform/bots/how-to/rate-limit ("Per bot per thread limit",
# send to conversation: 7 in 1 s, 8 in 2 s, 60 in 30 s, 1800 in 3600 s, all at once: 30 s is what binds a burst;
# "The global limit per app per tenant is 30 Requests Per Second (RPS)": one lane every conversation also draws from);
# Dataverse service protection limits https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
# (6000 requests per 5 minutes per user: every HTTP request counts, so an ERP item reserves all the requests it makes).
# Every operation on a conversation counts, so card edits share its posts' lane (Dispatcher._destinations).
TEAMS_THREAD = (Limit(7, 1.0), Limit(8, 2.0), Limit(60, 30.0), Limit(1800, 3600.0))
DEFAULT_LIMITS: Mapping[str, tuple[Limit, ...]] = {
    "slack.post": (Limit(1, 1.0),),
    "slack.update": (Limit(50, 60.0),),
    "teams.post": TEAMS_THREAD,
    # One Handoff serves one organisation's people and channels, so all its Teams traffic is one tenant's.
    "teams.app": (Limit(30, 1.0),),
    "erp.dataverse": (Limit(6000, 300.0),),
}
# Lanes every destination of a kind draws from as well as its own.
DEFAULT_SHARED: Mapping[str, str] = {"teams.post": "teams.app"}


@dataclass
class _Lane:
    """One lane's sent and reserved send times, one sorted log per limit."""

    sends: list[list[datetime]]
    paused_until: datetime | None = None


@dataclass
class Pacer:
    """Hands out send slots per destination ("slack.post:C0PROCURE"); limits are looked up by the part before ':'.

    A classic refilling token bucket of N tokens lets 2N through in one window of the platform's sliding
    counter, so each lane keeps the exact send times instead: a slot is the earliest moment at which every
    window around it holds fewer than N sends. Slots are reserved ahead, so a queue of 200 cards gets 200
    distinct times and each item waits for its own instead of polling. A lane shared by many destinations
    (Teams' per-tenant limit) takes slots out of order, so one conversation's queue never holds up another's.
    """

    limits: Mapping[str, tuple[Limit, ...]] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    shared: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SHARED))
    _lanes: dict[str, _Lane] = field(default_factory=dict)
    _held: dict[str, tuple[Destination, datetime, int]] = field(default_factory=dict)

    def reserve(self, destination: Destination, now: datetime, key: str, cost: int = 1) -> datetime:
        """When the send `key` to `destination` (or to several at once), `cost` calls, may go: now, or a later slot
        held for it until then."""
        held = self._held.pop(key, None)
        if held is not None and held[0] == destination and held[1] <= now:
            return now
        at = self.book(destination, now, cost)
        if at > now:
            self._held[key] = (destination, at, cost)
        return at

    def book(self, destination: Destination, now: datetime, cost: int = 1) -> datetime:
        """The earliest slot for `cost` calls to `destination`, taken for a caller that waits for it itself."""
        lanes = [(name, self._lane(name)) for name in self._lane_names(destination)]
        # A destination's own slots are handed out in order (its queue is in order), so each starts after its last.
        own = [self._lanes[name] for name in _own(destination)]
        at = max([now] + [lane.paused_until for lane in own if lane.paused_until]
                 + [sends[-1] for lane in own for sends in lane.sends if sends])
        while True:
            later = max((_later(sends, limit, at, now, cost) for name, lane in lanes
                         for limit, sends in zip(self._limits(name), lane.sends)), default=at)
            if later == at:
                break
            at = later
        for _, lane in lanes:
            for sends in lane.sends:
                for _ in range(cost):
                    bisect.insort(sends, at)
        return at

    def pause(self, destination: Destination, until: datetime) -> None:
        """The platform answered 429: nothing more goes to this destination, and only this one, before `until`."""
        for name in _own(destination):
            lane = self._lane(name)
            lane.paused_until = max(until, lane.paused_until or until)
        # The sends that went still count in the platform's windows: forgetting them would let the next ones meet the
        # same full window, a 429 a second where no Retry-After comes (Teams). Only the slots held for later are
        # handed back, so every item holding one asks again, after the pause.
        for key, (held_for, at, cost) in list(self._held.items()):
            if set(_own(held_for)) & set(_own(destination)):
                del self._held[key]
                for name in self._lane_names(held_for):
                    for sends in self._lane(name).sends:
                        _remove(sends, at, cost)

    def _lane_names(self, destination: Destination) -> list[str]:
        own = _own(destination)
        shared = {self.shared[kind] for name in own if (kind := name.split(":", 1)[0]) in self.shared}
        return [*own, *sorted(shared)]

    def _limits(self, name: str) -> tuple[Limit, ...]:
        return self.limits.get(name.split(":", 1)[0], ())

    def _lane(self, name: str) -> _Lane:
        return self._lanes.setdefault(name, _Lane([[] for _ in self._limits(name)]))


# Calls the outbox reserved for the item being delivered, per destination; a list, so the tasks an item's calls fan out
# into (asyncio.gather copies the context) spend one count.
_PREPAID: ContextVar[dict[Destination, list[int]] | None] = ContextVar("handoff_prepaid", default=None)


@contextmanager
def prepaid(destination: Destination, calls: int) -> Iterator[None]:
    """The first `calls` calls to `destination` inside this block were reserved already (by the outbox): they don't
    draw from its Budget again."""
    token = _PREPAID.set({**(_PREPAID.get() or {}), destination: [calls]})
    try:
        yield
    finally:
        _PREPAID.reset(token)


@dataclass
class Budget:
    """One destination's pacing for calls made outside the outbox (enrichment, a click's check, reconcile polls), so
    they and the outbox's write-backs share one budget: e.g. a Dataverse application user's 6000 requests in 5 min."""

    pacer: Pacer
    destination: str
    clock: Clock
    # Tests run on a simulated clock: they move it instead of sleeping.
    wait_until: Callable[[datetime], Awaitable[None]] | None = None

    async def acquire(self) -> None:
        """Return when one more call may go: at once when the outbox reserved it, else at the budget's next free slot."""
        left = (_PREPAID.get() or {}).get(self.destination)
        if left and left[0] > 0:
            left[0] -= 1
            return
        now = self.clock.now()
        at = self.pacer.book(self.destination, now)
        if at > now:
            await (self.wait_until(at) if self.wait_until else asyncio.sleep((at - now).total_seconds()))


def _own(destination: Destination) -> tuple[str, ...]:
    return (destination,) if isinstance(destination, str) else destination


def _later(sends: list[datetime], limit: Limit, at: datetime, now: datetime, cost: int) -> datetime:
    """`at` if `cost` more sends fit there under `limit`, else a later moment worth trying."""
    if cost > limit.calls:
        raise ValueError(f"{cost} calls at once can never fit a limit of {limit.calls} per {limit.per_seconds:g} s; "
                         "split the work into smaller items.")
    window = timedelta(seconds=limit.per_seconds)
    del sends[:bisect.bisect_right(sends, now - window)]  # gone from every window from now on
    room = limit.calls - cost  # sends a window may still hold when these go
    upto = bisect.bisect_right(sends, at)
    if upto - bisect.bisect_right(sends, at - window) > room:
        return sends[upto - room - 1] + window  # when enough of the window before `at` has left it
    # Slots reserved later than `at` (another conversation's, in a shared lane): each window ending at one of them
    # holds `at` too.
    for ahead in sends[upto:bisect.bisect_left(sends, at + window)]:
        if bisect.bisect_right(sends, ahead) - bisect.bisect_right(sends, ahead - window) > room:
            return ahead
    return at


def _remove(sends: list[datetime], at: datetime, count: int) -> None:
    """Hand back `count` slots at `at`; one older than its window has left the log already."""
    first = bisect.bisect_left(sends, at)
    del sends[first:min(first + count, bisect.bisect_right(sends, at))]
