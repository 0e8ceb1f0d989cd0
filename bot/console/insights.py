"""Process intelligence: approval durations by role and stage, weekly cycle time, where requests wait, rates by exception type."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from aiohttp import web

from handoff.bot.core.events import Event
from handoff.bot.core.view import role_label

from . import svg
from .context import CONSOLE
from .facts import StageTiming, all_exception_types, finished_requests, percentile, requests_with_event, stage_timings
from .page import h, hours, table

HOUR = 3600.0


def _stage_label(t: StageTiming) -> str:
    return f"Stage {t.stage + 1} · {role_label(t.role)}"


def approval_durations(timings: list[StageTiming]) -> list[tuple[str, float, float, int]]:
    """(stage label, median hours, p90 hours, count) over decided stages."""
    groups: dict[str, list[float]] = defaultdict(list)
    for t in timings:
        if t.decided_at is not None:
            groups[_stage_label(t)].append((t.decided_at - t.started_at).total_seconds() / HOUR)
    return [(label, percentile(v, 0.5), percentile(v, 0.9), len(v)) for label, v in sorted(groups.items())]


def waits(timings: list[StageTiming], now: datetime) -> list[tuple[str, float, int]]:
    """(stage label, mean hours waited, still waiting), longest first; open stages count up to now."""
    groups: dict[str, list[StageTiming]] = defaultdict(list)
    for t in timings:
        groups[_stage_label(t)].append(t)
    rows = [(label, sum(t.waited(now).total_seconds() for t in ts) / len(ts) / HOUR, sum(t.decided_at is None for t in ts))
            for label, ts in groups.items()]
    return sorted(rows, key=lambda r: -r[1])


def weekly_cycle(store) -> list[tuple[str, float, int]]:
    """(ISO week finished, median hours from ERP event to outcome, count), oldest week first."""
    weeks: dict[str, list[float]] = defaultdict(list)
    for f in finished_requests(store):
        year, week, _ = f.finished_at.isocalendar()
        weeks[f"{year}-W{week:02d}"].append((f.finished_at - f.created_at).total_seconds() / HOUR)
    return [(week, percentile(v, 0.5), len(v)) for week, v in sorted(weeks.items())]


def rates(store) -> list[tuple[str, float, float, int]]:
    """(exception type, % rejected, % with an info request, requests) over all requests of that type."""
    totals = all_exception_types(store)
    asked = requests_with_event(store.conn, Event.INFO_REQUESTED)
    rejected: dict[str, int] = defaultdict(int)
    info: dict[str, int] = defaultdict(int)
    for rid, kind, status in store.conn.execute("SELECT id, COALESCE(exception_type, '(none)'), status FROM requests"):
        rejected[kind] += status == "rejected"
        info[kind] += rid in asked
    return [(kind, 100 * rejected[kind] / n, 100 * info[kind] / n, n) for kind, n in sorted(totals.items())]


def _section(title: str, chart: str, headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<h2>{h(title)}</h2><p>{h(empty)}</p>"
    return f"<h2>{h(title)}</h2><figure>{chart}</figure>{table(headers, rows)}"


async def insights_page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    core = console.core(request)
    now = core.clock.now()
    timings = stage_timings(core.store)
    durations, waiting, weekly, by_type = approval_durations(timings), waits(timings, now), weekly_cycle(core.store), rates(core.store)
    body = "".join([
        _section("Approval duration by role and stage",
                 svg.bars("Approval duration by role and stage", [(d[0], (d[1], d[2])) for d in durations], ("median", "p90"), "h"),
                 ["Stage", "Median", "p90", "Decided"], [[h(d[0]), h(hours(d[1] * HOUR)), h(hours(d[2] * HOUR)), h(d[3])] for d in durations],
                 "No stage has been decided yet."),
        _section("Cycle time per week", svg.line("Median cycle time per week", [(w[0], w[1]) for w in weekly], "h"),
                 ["Week finished", "Median cycle time", "Requests"], [[h(w[0]), h(hours(w[1] * HOUR)), h(w[2])] for w in weekly],
                 "No request has finished yet."),
        _section("Where requests wait longest", svg.bars("Mean wait by stage", [(w[0], (w[1],)) for w in waiting], ("mean wait",), "h"),
                 ["Stage", "Mean wait", "Waiting now"], [[h(w[0]), h(hours(w[1] * HOUR)), h(w[2])] for w in waiting],
                 "No stage has started yet."),
        _section("Rejection and info-request rates by exception type",
                 svg.bars("Rates by exception type", [(r[0], (r[1], r[2])) for r in by_type], ("rejected", "info requested"), "%"),
                 ["Exception type", "Rejected", "Info requested", "Requests"],
                 [[h(r[0]), f"{r[1]:.0f}%", f"{r[2]:.0f}%", h(r[3])] for r in by_type], "No requests yet."),
    ])
    return console.page(request, "Process intelligence", body)
