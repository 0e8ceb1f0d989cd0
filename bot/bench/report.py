"""The targets issue 8 sets, checked against a result, and the table `handoff bench` prints."""

from __future__ import annotations

from collections.abc import Callable

POSTGRES = ("not measured: the bench drives SQLite (WAL) only; the PostgreSQL backend (state/pg.py, a postgresql:// "
            "HANDOFF_DATABASE) arrived after it and has no bench run yet")


def _level(result: dict, scenario: str, concurrency: int) -> dict:
    return next((lv for lv in result["scenarios"][scenario].get("levels", []) if lv["concurrency"] == concurrency), {})


def _verdict(name: str, goal: str, measured: float | None, holds: Callable[[float], bool], note: str = "") -> dict:
    verdict = "n/a" if measured is None else ("holds" if holds(measured) else "misses")
    return {"target": name, "goal": goal, "measured": measured, "verdict": verdict, "note": note}


def targets(result: dict) -> list[dict]:
    """Each target with what was measured and whether it holds ("n/a" when the run could not measure it)."""
    card, click = _level(result, "event_to_card", 32), _level(result, "click_to_ack", 32)
    stall, memory = result["scenarios"]["stall_scan"], result["scenarios"]["memory"]
    full = memory.get("requests", 0) >= 100_000
    stall_ms = stall.get("tick_ms") if stall.get("tick_ms") is not None else stall.get("due_query_ms")
    return [
        _verdict("event→card throughput, c=32", ">= 50% of the ceiling", card.get("ratio_per_s"), lambda v: v >= 0.5),
        _verdict("event→card p99, c=32", "< 50 ms", card.get("card_p99_ms"), lambda v: v < 50),
        _verdict("click→ack p99, c=32", "< 100 ms", click.get("ack_p99_ms"), lambda v: v < 100),
        _verdict(f"stall scan at {stall.get('open_requests', 0):,} open", "< 1000 ms", stall_ms, lambda v: v < 1000,
                 "" if stall.get("open_requests", 0) >= 100_000 else "fewer than 100,000 rows (--quick)"),
        _verdict("RSS idle", "< 150 MB", memory.get("idle_mb"), lambda v: v < 150),
        _verdict(f"RSS after {memory.get('completed', 0):,} requests", "< 300 MB", memory.get("after_mb"), lambda v: v < 300,
                 "" if full else "the target is for 100,000 requests; this run did fewer (--quick or --memory-requests)"),
    ]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def table(result: dict) -> str:
    """The figures as aligned text: one row per scenario and concurrency, then the targets."""
    rows = [("scenario", "c", "requests", "errors", "per s", "p50 ms", "p99 ms", "x ceiling/s", "x ceiling p99", "then")]
    for scenario, latency in (("ceiling", "card"), ("event_to_card", "card"), ("click_to_ack", "ack")):
        for lv in result["scenarios"][scenario].get("levels", []):
            then = f"decided p50 {_cell(lv.get('decided_p50_ms'))} / p99 {_cell(lv.get('decided_p99_ms'))} ms" if "decided_p50_ms" in lv else ""
            rows.append((scenario, lv["concurrency"], lv["requests"], lv["errors"], _cell(lv["per_s"]), _cell(lv.get(f"{latency}_p50_ms")),
                         _cell(lv.get(f"{latency}_p99_ms")), _cell(lv.get("ratio_per_s")), _cell(lv.get("ratio_p99")), then))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    scenarios = result["scenarios"]
    stall, memory = scenarios["stall_scan"], scenarios["memory"]
    lines += [
        f"teams adaptiveCard/action: {scenarios['click_to_ack'].get('teams', '-')}",
        (f"stall scan: {stall.get('open_requests', 0):,} open, {stall.get('due', 0):,} due; due query {_cell(stall.get('due_query_ms'))} ms "
         f"({stall.get('due_found', 0):,} rows); one tick {_cell(stall.get('tick_ms'))} ms, all due in {_cell(stall.get('all_due_ticks'))} "
         f"ticks {_cell(stall.get('all_due_ms'))} ms — {stall.get('scheduler', '')}"),
        (f"memory ({memory.get('process', '')}): idle {_cell(memory.get('idle_mb'))} MB, after {memory.get('completed', 0):,} requests "
         f"{_cell(memory.get('after_mb'))} MB, second half {_cell(memory.get('growth_kb_per_request_second_half'))} KB/request"),
        f"postgresql: {result['backends']['postgresql']}",
        "",
        "targets:",
    ]
    for t in result["targets"]:
        note = f" ({t['note']})" if t["note"] else ""
        lines.append(f"  {t['verdict'].upper():7} {t['target']}: {_cell(t['measured'])} (goal {t['goal']}){note}")
    if result.get("quick"):
        lines.append("quick run: short levels, fewer stall rows and memory requests; run `handoff bench` for the full figures.")
    return "\n".join(lines)
