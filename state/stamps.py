"""How the store writes a moment: ISO 8601 with microseconds and its UTC offset, so text order is time order."""

from __future__ import annotations

from datetime import datetime


def stamp(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")
