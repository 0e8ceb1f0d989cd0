"""Pacing: each destination's published send limits, so a burst goes out at the limit without a single 429."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Limit:
    """At most `calls` in any `per_seconds` window, as the platform states it."""

    calls: int
    per_seconds: float


# Sources, checked 2026-11: Slack https://docs.slack.dev/apis/web-api/rate-limits ("chat.postMessage generally
# allows posting one message per second per channel"; chat.update is Tier 3, 50+ per minute; the workspace-wide
# postMessage limit has no published number, so a 429 from it pauses the destination by its Retry-After);
# Teams https://learn.microsoft.com/microsoftteams/platform/bots/how-to/rate-limit ("Per bot per thread limit",
# send to conversation: 7 in 1 s, 8 in 2 s, 60 in 30 s, 1800 in 3600 s, all at once: 30 s is what binds a burst);
# Dataverse service protection limits https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
# (6000 requests per 5 minutes per user: every HTTP request counts, so an ERP item reserves all the requests it makes).
# Every operation on a conversation counts, so card edits share its posts' lane (Dispatcher._destination).
TEAMS_THREAD = (Limit(7, 1.0), Limit(8, 2.0), Limit(60, 30.0), Limit(1800, 3600.0))
DEFAULT_LIMITS: Mapping[str, tuple[Limit, ...]] = {
    "slack.post": (Limit(1, 1.0),),
    "slack.update": (Limit(50, 60.0),),
    "teams.post": TEAMS_THREAD,
    "erp.dataverse": (Limit(6000, 300.0),),
}


@dataclass
class _Lane:
    """One destination's recent and reserved send times, one log per limit, oldest first."""

    sends: list[deque[datetime]]
    paused_until: datetime | None = None


@dataclass
class Pacer:
    """Hands out send slots per destination ("slack.post:C0PROCURE"); limits are looked up by the part before ':'.

    A classic refilling token bucket of N tokens lets 2N through in one window of the platform's sliding
    counter, so each destination keeps the exact send times instead: a slot is the earliest moment at which
    every one of its windows holds fewer than N sends. Slots are reserved in order, so a queue of 200 cards
    gets 200 distinct times and each item waits for its own instead of polling.
    """

    limits: Mapping[str, tuple[Limit, ...]] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    _lanes: dict[str, _Lane] = field(default_factory=dict)
    _held: dict[str, tuple[str, datetime, int]] = field(default_factory=dict)

    def reserve(self, destination: str, now: datetime, key: str, cost: int = 1) -> datetime:
        """When the send `key` to `destination`, `cost` calls at once, may go: now, or a later slot held for it until then."""
        held = self._held.pop(key, None)
        if held is not None and held[0] == destination and held[1] <= now:
            return now
        lane = self._lane(destination)
        at = max(now, lane.paused_until or now)
        for limit, sends in zip(self._limits(destination), lane.sends):
            if cost > limit.calls:
                raise ValueError(f"{cost} calls to {destination} at once can never fit its limit of {limit.calls} "
                                 f"per {limit.per_seconds:g} s; split the work into smaller items.")
            window = timedelta(seconds=limit.per_seconds)
            while sends and sends[0] <= now - window:
                sends.popleft()
            if sends:
                at = max(at, sends[-1])  # slots are handed out in order, so the logs stay sorted
            room = limit.calls - cost  # sends the window may still hold when these go
            if len(sends) > room:
                at = max(at, sends[-room - 1] + window)
        for sends in lane.sends:
            sends.extend([at] * cost)
        if at > now:
            self._held[key] = (destination, at, cost)
        return at

    def pause(self, destination: str, until: datetime) -> None:
        """The platform answered 429: nothing more goes to this destination, and only this one, before `until`."""
        lane = self._lane(destination)
        lane.paused_until = max(until, lane.paused_until or until)
        # The sends that went still count in the platform's windows: forgetting them would let the next ones meet the
        # same full window, a 429 a second where no Retry-After comes (Teams). Only the slots held for later are
        # handed back, so every item holding one asks again, after the pause.
        for key, (held_at, at, cost) in list(self._held.items()):
            if held_at == destination:
                del self._held[key]
                for sends in lane.sends:
                    for _ in range(min(cost, sends.count(at))):  # a slot older than its window has left already
                        sends.remove(at)

    def _limits(self, destination: str) -> tuple[Limit, ...]:
        return self.limits.get(destination.split(":", 1)[0], ())

    def _lane(self, destination: str) -> _Lane:
        return self._lanes.setdefault(destination, _Lane([deque() for _ in self._limits(destination)]))
