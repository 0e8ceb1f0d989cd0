"""The targets issue 8 sets, checked per backend, and the table `handoff bench` prints."""

from __future__ import annotations

from collections.abc import Callable

# Each row of the table: the scenario's key in a backend's result, and the latency its p50/p99 columns show.
ROWS = (("ceiling", "card"), ("event_to_card", "card"), ("click_to_ack", "ack"), ("teams_event_to_card", "card"),
        ("teams_click_to_ack", "ack"))


def _level(scenarios: dict, scenario: str, concurrency: int) -> dict:
    return next((lv for lv in scenarios.get(scenario, {}).get("levels", []) if lv["concurrency"] == concurrency), {})


def _verdict(name: str, goal: str, measured: float | None, holds: Callable[[float], bool], note: str = "") -> dict:
    verdict = "n/a" if measured is None else ("holds" if holds(measured) else "misses")
    return {"target": name, "goal": goal, "measured": measured, "verdict": verdict, "note": note}


def targets(scenarios: dict) -> list[dict]:
    """Each target with what one backend's run measured and whether it holds ("n/a" when it could not be measured)."""
    card, click, teams = (_level(scenarios, s, 32) for s in ("event_to_card", "click_to_ack", "teams_click_to_ack"))
    stall, memory = scenarios["stall_scan"], scenarios["memory"]
    full = memory.get("requests", 0) >= 100_000
    stall_ms = stall.get("tick_ms") if stall.get("tick_ms") is not None else stall.get("due_query_ms")
    return [
        _verdict("event→card throughput, c=32", ">= 50% of the ceiling", card.get("ratio_per_s"), lambda v: v >= 0.5),
        _verdict("event→card p99, c=32", "< 50 ms", card.get("card_p99_ms"), lambda v: v < 50),
        _verdict("Slack click→ack p99, c=32", "< 100 ms", click.get("ack_p99_ms"), lambda v: v < 100),
        _verdict("Teams click→ack p99, c=32", "< 100 ms", teams.get("ack_p99_ms"), lambda v: v < 100),
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


def _rows(result: dict) -> list[tuple]:
    rows = [("backend", "scenario", "c", "requests", "errors", "per s", "p50 ms", "p99 ms", "x ceiling/s", "x ceiling p99", "then")]
    for backend, run in result["backends"].items():
        for scenario, latency in ROWS:
            for lv in run["scenarios"].get(scenario, {}).get("levels", []):
                then = f"decided p50 {_cell(lv.get('decided_p50_ms'))} / p99 {_cell(lv.get('decided_p99_ms'))} ms" if "decided_p50_ms" in lv else ""
                rows.append((backend, scenario, lv["concurrency"], lv["requests"], lv["errors"], _cell(lv["per_s"]),
                             _cell(lv.get(f"{latency}_p50_ms")), _cell(lv.get(f"{latency}_p99_ms")), _cell(lv.get("ratio_per_s")),
                             _cell(lv.get("ratio_p99")), then))
    return rows


def _backend_lines(backend: str, run: dict) -> list[str]:
    if run["status"] != "measured":
        return [f"{backend}: {run['status']}"]
    stall, memory = run["scenarios"]["stall_scan"], run["scenarios"]["memory"]
    lines = [
        f"{backend}:",
        f"  ceiling: {run['scenarios']['ceiling']['what']}",
        (f"  stall scan: {stall.get('open_requests', 0):,} open, {stall.get('due', 0):,} due; due query {_cell(stall.get('due_query_ms'))} ms "
         f"({stall.get('due_found', 0):,} rows); one tick {_cell(stall.get('tick_ms'))} ms, all due in {_cell(stall.get('all_due_ticks'))} "
         f"ticks {_cell(stall.get('all_due_ms'))} ms — {stall.get('scheduler', '')}"),
        (f"  memory ({memory.get('process', '')}): idle {_cell(memory.get('idle_mb'))} MB, after {memory.get('completed', 0):,} requests "
         f"{_cell(memory.get('after_mb'))} MB, second half {_cell(memory.get('growth_kb_per_request_second_half'))} KB/request"),
        "  targets:",
    ]
    for t in run["targets"]:
        note = f" ({t['note']})" if t["note"] else ""
        lines.append(f"    {t['verdict'].upper():7} {t['target']}: {_cell(t['measured'])} (goal {t['goal']}){note}")
    return lines


def table(result: dict) -> str:
    """The figures as aligned text: one row per backend, scenario and concurrency; then each backend's targets."""
    rows = _rows(result)
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    lines += ["", "measured:", *(f"  {name}: {what}" for name, what in result["measured"].items()), f"  ratios: {result['ratios']}", ""]
    for backend, run in result["backends"].items():
        lines += _backend_lines(backend, run)
    if result.get("quick"):
        lines.append("quick run: short levels, fewer stall rows and memory requests; run `handoff bench` for the full figures.")
    return "\n".join(lines)
