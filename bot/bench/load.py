"""The load generator: `concurrency` closed-loop workers on one event loop, bounded by time and by request count."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

# One request: given its index, do it and return named latencies in milliseconds ({"ack": 3.1, "decided": 9.4}).
Request = Callable[[int], Awaitable[Mapping[str, float]]]


@dataclass
class Run:
    """What one load level measured: completed requests, failures, wall time and every latency by name."""

    concurrency: int
    completed: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    first_error: str | None = None

    def summary(self) -> dict:
        """Throughput and p50/p99 of each latency, rounded for people to read."""
        out: dict = {"concurrency": self.concurrency, "requests": self.completed, "errors": self.errors,
                     "seconds": round(self.seconds, 3), "per_s": round(self.completed / self.seconds, 1) if self.seconds else 0.0}
        for name, values in self.latencies.items():
            out[f"{name}_p50_ms"] = round(percentile(values, 50), 2)
            out[f"{name}_p99_ms"] = round(percentile(values, 99), 2)
        if self.first_error:
            out["first_error"] = self.first_error
        return out


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; 0.0 for no values so an empty level still reports."""
    if not values:
        return 0.0
    ranked = sorted(values)
    return ranked[max(0, math.ceil(p / 100 * len(ranked)) - 1)]


async def drive(request: Request, *, concurrency: int, duration_s: float, max_requests: int, timeout_s: float = 10.0) -> Run:
    """Run `request` from `concurrency` workers until `duration_s` has passed or `max_requests` were started."""
    run = Run(concurrency)
    started = 0
    begin = time.perf_counter()
    deadline = begin + duration_s

    async def worker() -> None:
        nonlocal started
        while started < max_requests and time.perf_counter() < deadline:
            index, started = started, started + 1
            try:
                # A per-request timeout keeps a lost card or a hung fake from stalling the whole benchmark.
                measured = await asyncio.wait_for(request(index), timeout_s)
            except Exception as error:  # noqa: BLE001 — any failure counts against the run, and the first one is shown
                run.errors += 1
                said = f"not done within {timeout_s:g} s" if isinstance(error, TimeoutError) else str(error)
                run.first_error = run.first_error or f"{type(error).__name__}: {said}"
                continue
            run.completed += 1
            for name, ms in measured.items():
                run.latencies.setdefault(name, []).append(ms)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.seconds = time.perf_counter() - begin
    return run
