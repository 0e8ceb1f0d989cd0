"""One benchmark run: every scenario in order, on loopback, with a line of progress per scenario and level."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from handoff.bot.fakes.stack import local_stack

from . import ceiling, memory, stall
from .flows import Flows, teams_status
from .load import Run
from .observe import DecisionWatch
from .report import POSTGRES, targets
from .routing import write_routing

LEVELS = (1, 8, 32)


@dataclass(frozen=True)
class Options:
    """How long and how big: the full run is the issue's sizes; --quick shrinks every one of them."""

    duration_s: float = 10.0
    stall_rows: int = 100_000
    memory_requests: int = 100_000
    max_requests: int = 20_000  # per level: a cap so a fast machine cannot run a level forever
    quick: bool = False

    @classmethod
    def quick_run(cls, duration_s: float | None = None) -> Options:
        return cls(duration_s=duration_s or 2.0, stall_rows=10_000, memory_requests=2_000, quick=True)


def _with_ratio(run: Run, base: Run, latency: str) -> dict:
    level, floor = run.summary(), base.summary()
    level["ratio_per_s"] = round(level["per_s"] / floor["per_s"], 3) if floor["per_s"] else None
    level["ratio_p99"] = round(level[f"{latency}_p99_ms"] / floor["card_p99_ms"], 2) if floor.get("card_p99_ms") else None
    return level


async def run_bench(options: Options, progress: Callable[[str], None] = print) -> dict:
    """Run every scenario and return the result (figures, targets, what could not be measured and why)."""
    result: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "quick": options.quick, "duration_s": options.duration_s, "levels": list(LEVELS),
        "backends": {"sqlite": "measured", "postgresql": POSTGRES},
        "scenarios": {},
    }
    scenarios = result["scenarios"]
    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as work:
        workdir = Path(work)
        routing = write_routing(workdir / "bench-routing.toml")
        with DecisionWatch.installed() as decisions:
            async with local_stack(workdir / "handoff.db", routing=routing) as stack, ceiling.ceiling(stack, workdir / "ceiling.db") as bare:
                flows = Flows(stack, decisions)
                sample = stack.odoo.webhook_body(flows.shelf.add()[0])
                floors, cards, clicks = {}, [], []
                for level in LEVELS:
                    floors[level] = await ceiling.measure(stack, bare, sample, level, options.duration_s, options.max_requests)
                    progress(f"ceiling      c={level:<2} {floors[level].summary()['per_s']:>8} /s")
                    run = await flows.event_to_card(level, options.duration_s, options.max_requests)
                    cards.append(_with_ratio(run, floors[level], "card"))
                    progress(f"event→card   c={level:<2} {cards[-1]['per_s']:>8} /s  p99 {cards[-1]['card_p99_ms']} ms")
                for level in LEVELS:
                    # As many cards as this level could click in its time at the event→card rate, and some spare.
                    wanted = min(options.max_requests, int(next(c for c in cards if c["concurrency"] == level)["per_s"] * options.duration_s * 1.5) + 20)
                    run = await flows.click_to_ack(level, options.duration_s, wanted)
                    clicks.append(_with_ratio(run, floors[level], "ack"))
                    progress(f"click→ack    c={level:<2} {clicks[-1]['per_s']:>8} /s  p99 {clicks[-1].get('ack_p99_ms')} ms")
                scenarios["ceiling"] = {"what": "bare aiohttp handler: one SQLite WAL insert, one chat.postMessage to the same fake",
                                        "levels": [floors[level].summary() for level in LEVELS]}
                scenarios["event_to_card"] = {"what": "Odoo webhook POST until the fake Slack receives the card's chat.postMessage",
                                              "levels": cards}
                scenarios["click_to_ack"] = {"what": "signed Slack block_actions: HTTP answer (ack), then the decision in the log "
                                                     "(the drift check against the fake Odoo included)",
                                             "levels": clicks, "teams": teams_status(stack.app)}
        progress(f"stall scan   {options.stall_rows:,} open requests…")
        scenarios["stall_scan"] = await stall.measure(workdir / "stall.db", routing, options.stall_rows)
        progress(f"memory       {options.memory_requests:,} requests through `handoff serve`…")
        scenarios["memory"] = await memory.measure(workdir, options.memory_requests, progress)
    result["targets"] = targets(result)
    return result
