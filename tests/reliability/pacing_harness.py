"""Simulated time for pacing tests: the dispatcher drains, the clock jumps to the next due item, nothing sleeps."""

from __future__ import annotations

from datetime import datetime

from handoff.bot.core.deliver import Dispatcher
from handoff.bot.core.effects import Effects
from handoff.bot.core.models import Target
from handoff.state.store import Store


def queue(store: Store, clock, target: Target, count: int) -> None:
    """`count` messages to one conversation, queued at once: a burst."""
    with store.transaction() as conn:
        for n in range(count):
            Effects(conn, clock.now()).notify(target, f"{target.address} message {n}")


def next_due(store: Store, kinds: tuple[str, ...]) -> datetime | None:
    marks = ",".join("?" * len(kinds))
    [(at,)] = store.conn.execute(f"SELECT MIN(next_at) FROM outbox WHERE status = 'pending' AND kind IN ({marks})", kinds)
    return datetime.fromisoformat(at) if at else None


async def deliver_all(dispatcher: Dispatcher, store: Store, clock, kinds: tuple[str, ...] = ("notify",)) -> None:
    """Drain until no item of `kinds` is pending, jumping the clock to the next one due; other kinds go along as they fall due."""
    for _ in range(100_000):
        if await dispatcher.drain():
            continue  # more may be due at this same moment
        due = next_due(store, kinds)
        if due is None:
            return
        clock.at = max(clock.at, due)
    raise AssertionError("the outbox never emptied")


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of sends in any half-open window (t - window, t], as the platforms count."""
    return max(sum(1 for u in times if t - window < u <= t) for t in times)
