"""Lanes: work on different keys overlaps, work on one key keeps its order."""

from __future__ import annotations

import asyncio

from handoff.bot.core.lanes import in_lanes


async def test_one_key_keeps_its_order_while_keys_overlap():
    started, finished = [], []
    release = asyncio.Event()

    async def work(item: tuple[str, int]) -> None:
        started.append(item)
        if item == ("slow", 1):
            await release.wait()
        finished.append(item)

    async def unblock_once_fast_lane_is_done() -> None:
        while ("fast", 2) not in finished:
            await asyncio.sleep(0)
        release.set()

    items = [("slow", 1), ("fast", 1), ("slow", 2), ("fast", 2)]
    await asyncio.gather(in_lanes(items, lambda i: i[0], work, width=4), unblock_once_fast_lane_is_done())
    assert finished.index(("fast", 2)) < finished.index(("slow", 1)), "a slow key does not hold up another"
    assert started.index(("slow", 2)) > finished.index(("slow", 1)), "one key's items never overtake each other"


async def test_width_bounds_how_many_lanes_run_at_once():
    running, peak = 0, 0

    async def work(_: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1

    await in_lanes(range(20), lambda i: i, work, width=3)
    assert peak == 3
