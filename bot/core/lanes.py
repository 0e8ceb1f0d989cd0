"""Bounded concurrency with per-key order: work on different keys overlaps, work on one key stays in sequence."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def in_lanes(items: Iterable[T], lane_of: Callable[[T], Hashable], work: Callable[[T], Awaitable[None]], width: int) -> None:
    """Run `work` on every item: one lane per key, in the items' order within a lane, at most `width` lanes at once.

    Waiting on an ERP or a chat API is most of the time an item takes, so one slow record must not hold up the rest;
    but two events for one record, or a card post and its update, must not overtake each other.
    """
    lanes: dict[Hashable, list[T]] = {}
    for item in items:
        lanes.setdefault(lane_of(item), []).append(item)
    gate = asyncio.Semaphore(width)

    async def run(lane: list[T]) -> None:
        async with gate:
            for item in lane:
                await work(item)

    await asyncio.gather(*(run(lane) for lane in lanes.values()))
