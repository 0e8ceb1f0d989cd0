"""Scenario 4, memory: the RSS of a real `handoff serve` process, idle and after many requests, against the local fakes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from .load import drive
from .process import rss_mb
from .served import handoff_process


def _settled(health: Mapping) -> bool:
    return not health.get("inbox", {}).get("pending") and not health.get("outbox", {}).get("pending")


async def measure(workdir: Path, database: str | Path, requests: int, progress: Callable[[str], None]) -> dict:
    """RSS idle, after half and after all of `requests` webhook → card flows, at concurrency 32."""
    async with handoff_process(workdir, database, name="memory") as served:
        pid = served.child.pid
        result: dict = {"requests": requests, "idle_mb": round(rss_mb(pid), 1), "process": "handoff serve (its own process)"}

        async def one(index: int) -> Mapping[str, float]:
            order_id, name = served.shelf.add()
            posted = served.posts.expect(name)
            status, _ = await served.post_webhook(served.odoo.webhook_body(order_id))
            if status != 200:
                raise RuntimeError(f"the webhook for {name} was answered {status}")
            await posted
            served.shelf.park(order_id, keep=False)
            if index % 1000 == 0:
                # The fake Slack keeps every message; the bench drops them so its own memory stays flat too.
                for kept in served.slack.messages.values():
                    kept.clear()
            return {}

        # Ten slices, each run to a settled worker before RSS is read: the curve shows growth that never comes back.
        done, errors, curve, first_error = 0, 0, [], None
        slices = [requests * k // 10 - requests * (k - 1) // 10 for k in range(1, 11)]
        for count in (c for c in slices if c):
            run = await drive(one, concurrency=32, duration_s=max(120.0, count / 5), max_requests=count)
            done, errors, first_error = done + run.completed, errors + run.errors, first_error or run.first_error
            await served.child.until_healthy(_settled, timeout=60)
            curve.append((done, round(rss_mb(pid), 1)))
            progress(f"  memory: {done:,}/{requests:,} requests, RSS {curve[-1][1]:.0f} MB")
        half = min(curve, key=lambda point: abs(point[0] - done / 2))
        result.update(after_mb=curve[-1][1], completed=done, errors=errors, first_error=first_error, curve=[{"requests": n, "rss_mb": mb} for n, mb in curve],
                      growth_kb_per_request_second_half=round((curve[-1][1] - half[1]) * 1024 / max(1, done - half[0]), 3))
        return result
