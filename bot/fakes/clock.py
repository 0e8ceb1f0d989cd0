"""A clock that runs with real time but can be moved ahead: how the demo shows days of waiting in seconds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


class OffsetClock:
    """Real time plus an offset; `jump_to` moves the offset so `now()` reaches a moment and keeps running from there."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def jump_to(self, at: datetime) -> None:
        self.offset += max(at - self.now(), timedelta())
