"""A sliding-window rate limiter on an injected clock, for fakes that answer 429 + Retry-After as the real service does."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass

from handoff.bot.core.ports import Clock


@dataclass(frozen=True)
class Limit:
    """At most `calls` in any `per_seconds` window."""

    calls: int
    per_seconds: float


class SlidingWindow:
    """Counts calls per key; a call over the limit is refused with the whole seconds to wait, and not counted."""

    def __init__(self, limit: Limit, clock: Clock) -> None:
        self.limit = limit
        self.clock = clock
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, key: str) -> int | None:
        """None when the call may go ahead (and is counted); otherwise seconds until a slot frees, at least 1."""
        now = self.clock.now().timestamp()
        seen = self._seen[key]
        while seen and seen[0] <= now - self.limit.per_seconds:
            seen.popleft()
        if len(seen) < self.limit.calls:
            seen.append(now)
            return None
        return max(1, math.ceil(seen[0] + self.limit.per_seconds - now))
