"""One benchmark run: every scenario for each state backend, on loopback, with a line of progress per scenario and level."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from handoff.bot.fakes.postgres import scratch_schema
from handoff.state.pg import redacted

from . import ceiling, memory, stall
from .flows import MEASURED, Flows
from .load import Run
from .report import targets
from .routing import write_routing
from .served import handoff_process

LEVELS = (1, 8, 32)
BACKENDS = ("sqlite", "postgresql")
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
Progress = Callable[[str], None]
# A fresh, empty database for one named use: a SQLite file, or a PostgreSQL URL whose search_path is a new schema.
Fresh = Callable[[str], AbstractContextManager[str | Path]]


@dataclass(frozen=True)
class Options:
    """How long and how big: the full run is the issue's sizes; --quick shrinks every one of them."""

    duration_s: float = 10.0
    stall_rows: int = 100_000
    memory_requests: int = 100_000
    max_requests: int = 20_000  # per level: a cap so a fast machine cannot run a level forever
    quick: bool = False
    backends: tuple[str, ...] = BACKENDS
    postgres: str = POSTGRES

    @classmethod
    def quick_run(cls, duration_s: float | None = None) -> Options:
        return cls(duration_s=duration_s or 2.0, stall_rows=10_000, memory_requests=2_000, quick=True)


def unavailable(backend: str, options: Options) -> str | None:
    """Why `backend` cannot run here (a "skipped: …" sentence for the output), or None when it can."""
    if backend not in options.backends:
        return "skipped: not asked for (--backends)"
    if backend == "postgresql":
        try:
            psycopg.connect(options.postgres, connect_timeout=3).close()
        except psycopg.Error as error:
            return (f"skipped: no PostgreSQL at {redacted(options.postgres)} ({str(error).strip().splitlines()[0]}); "
                    "start one or name it with --database postgresql://…")
    return None


def _fresh(backend: str, workdir: Path, postgres: str) -> Fresh:
    @contextmanager
    def sqlite(name: str) -> Iterator[Path]:
        yield workdir / f"{backend}-{name}.db"

    # A schema of its own per use, dropped afterwards: tests running on the same database are never touched.
    return sqlite if backend == "sqlite" else lambda name: scratch_schema(postgres)


def _with_ratio(run: Run, base: Run, latency: str) -> dict:
    level, floor = run.summary(), base.summary()
    level["ratio_per_s"] = round(level["per_s"] / floor["per_s"], 3) if floor["per_s"] else None
    level["ratio_p99"] = round(level[f"{latency}_p99_ms"] / floor["card_p99_ms"], 2) if floor.get("card_p99_ms") else None
    return level


def _wanted(options: Options, per_s: float, concurrency: int) -> int:
    # As many cards as a click level could approve in its time at `per_s`, and one more round of clicks to spare.
    return min(options.max_requests, int(per_s * options.duration_s * 1.5) + concurrency)


async def _levels(backend: str, flows: Flows, floors: dict[int, Run], options: Options, progress: Progress,
                  before: Callable[[int], Awaitable[None]] | None = None) -> tuple[list[dict], list[dict]]:
    """Event → card at each level (after `before` it), then click → ack at each level, on cards the first made."""
    chat, cards, clicks = flows.served.chat, [], []
    for level in LEVELS:
        if before:
            await before(level)
        run = await flows.event_to_card(level, options.duration_s, options.max_requests)
        cards.append(_with_ratio(run, floors[level], "card"))
        progress(f"{backend:<10} {chat:<5} event→card  c={level:<2} {cards[-1]['per_s']:>8} /s  p99 {cards[-1]['card_p99_ms']} ms")
    for level, card in zip(LEVELS, cards, strict=True):
        run = await flows.click_to_ack(level, options.duration_s, _wanted(options, card["per_s"], level))
        clicks.append(_with_ratio(run, floors[level], "ack"))
        progress(f"{backend:<10} {chat:<5} click→ack   c={level:<2} {clicks[-1]['per_s']:>8} /s  p99 {clicks[-1].get('ack_p99_ms')} ms")
    return cards, clicks


async def _slack(backend: str, fresh: Fresh, workdir: Path, options: Options, progress: Progress) -> tuple[dict, dict[int, Run]]:
    """The ceiling and Slack's event → card level by level, then Slack's clicks; Handoff and the ceiling each in a process."""
    floors: dict[int, Run] = {}
    with fresh("slack") as database, fresh("ceiling") as bare_database:
        async with handoff_process(workdir, database, "slack", f"{backend}-slack") as served, \
                ceiling.ceiling_process(workdir, bare_database, served.slack_url, served.slack.token) as bare:
            sample = served.odoo.webhook_body(served.shelf.add()[0])

            async def floor(level: int) -> None:
                floors[level] = await ceiling.measure(served.http, bare, sample, level, options.duration_s, options.max_requests,
                                                      served.slack.messages)
                progress(f"{backend:<10} ceiling     c={level:<2} {floors[level].summary()['per_s']:>8} /s")

            cards, clicks = await _levels(backend, Flows(served), floors, options, progress, before=floor)
    insert = "one SQLite WAL insert" if backend == "sqlite" else "one PostgreSQL INSERT (autocommit)"
    return {
        "ceiling": {"what": f"bare aiohttp handler in its own process: {insert}, one chat.postMessage to the same fake",
                    "levels": [floors[level].summary() for level in LEVELS]},
        "event_to_card": {"what": f"Slack: {MEASURED['card']}", "levels": cards},
        "click_to_ack": {"what": f"Slack: {MEASURED['ack']}; decided: {MEASURED['decided']}", "levels": clicks},
    }, floors


async def _teams(backend: str, fresh: Fresh, workdir: Path, options: Options, progress: Progress, floors: dict[int, Run]) -> dict:
    """The same two flows against Handoff configured for Teams, as ratios of the same ceiling."""
    with fresh("teams") as database:
        async with handoff_process(workdir, database, "teams", f"{backend}-teams") as served:
            cards, clicks = await _levels(backend, Flows(served), floors, options, progress)
    return {
        "teams_event_to_card": {"what": f"Teams: {MEASURED['card']}", "levels": cards},
        "teams_click_to_ack": {"what": f"Teams: {MEASURED['ack']} (the answer carries the updated card); decided: {MEASURED['decided']}",
                               "levels": clicks},
    }


async def _backend(backend: str, workdir: Path, options: Options, progress: Progress) -> dict:
    fresh = _fresh(backend, workdir, options.postgres)
    scenarios, floors = await _slack(backend, fresh, workdir, options, progress)
    scenarios.update(await _teams(backend, fresh, workdir, options, progress, floors))
    progress(f"{backend:<10} stall scan  {options.stall_rows:,} open requests…")
    with fresh("stall") as database:
        scenarios["stall_scan"] = await stall.measure(database, write_routing(workdir / "stall-routing.toml"), options.stall_rows)
    progress(f"{backend:<10} memory      {options.memory_requests:,} requests through `handoff serve`…")
    with fresh("memory") as database:
        scenarios["memory"] = await memory.measure(workdir, database, options.memory_requests, progress)
    return scenarios


async def run_bench(options: Options, progress: Progress = print) -> dict:
    """Run every scenario on each backend and return the result (figures, targets, what was skipped and why)."""
    result: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "quick": options.quick, "duration_s": options.duration_s, "levels": list(LEVELS), "measured": MEASURED,
        "ratios": "each backend's figures are ratios of the ceiling measured with the same backend in the same run",
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as work:
        for backend in BACKENDS:
            skipped = unavailable(backend, options)
            if skipped:
                progress(f"{backend:<10} {skipped}")
                result["backends"][backend] = {"status": skipped, "scenarios": {}, "targets": []}
                continue
            scenarios = await _backend(backend, Path(work), options, progress)
            result["backends"][backend] = {"status": "measured", "scenarios": scenarios, "targets": targets(scenarios)}
    return result


def parse_backends(text: str) -> tuple[str, ...]:
    """`--backends sqlite,postgresql` as a tuple, or a ValueError naming the unknown one and the choices."""
    chosen: Sequence[str] = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in chosen if name not in BACKENDS]
    if unknown or not chosen:
        raise ValueError(f"unknown backend {', '.join(unknown) or '(none given)'}: choose from {', '.join(BACKENDS)}, comma-separated")
    return tuple(chosen)
