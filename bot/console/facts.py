"""Read-only facts from the store for the console and /metrics: open requests and their age, stage timings, log checks."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from handoff.bot.core.events import Event
from handoff.bot.core.models import RequestState, RequestStatus, RoutePlan
from handoff.bot.core.route import RoutingConfig
from handoff.state import decision_log
from handoff.state.decision_log import LogEntry
from handoff.state.store import Store

# Upper bounds in hours; the last bucket is open-ended.
AGE_BUCKETS: tuple[tuple[str, float], ...] = (("<4h", 4), ("4–24h", 24), ("1–3d", 72), (">3d", math.inf))
UNKNOWN = "(none)"


def age_bucket(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return next(label for label, bound in AGE_BUCKETS if hours < bound)


@dataclass(frozen=True)
class OpenRequest:
    request: RequestState
    age: timedelta
    stall: str | None  # why it counts as stalled, or None

    @property
    def bucket(self) -> str:
        return age_bucket(self.age)

    @property
    def business_unit(self) -> str:
        return self.request.packet.record.business_unit or UNKNOWN

    @property
    def exception_type(self) -> str:
        return self.request.packet.record.exception_type or UNKNOWN


def _stage_starts(conn: sqlite3.Connection) -> dict[tuple[str, int], datetime]:
    rows = conn.execute("SELECT request_id, stage, started_at FROM stages WHERE started_at IS NOT NULL")
    return {(rid, stage): datetime.fromisoformat(at) for rid, stage, at in rows}


def requests_with_event(conn: sqlite3.Connection, event: Event) -> set[str]:
    rows = conn.execute("SELECT DISTINCT request_id FROM decision_log WHERE event = ? AND request_id IS NOT NULL", (event.value,))
    return {row[0] for row in rows}


def open_requests(store: Store, routing: RoutingConfig, now: datetime) -> list[OpenRequest]:
    """Open requests, stalled ones first, then oldest first. SLAs count business hours in the request's region's calendar."""
    starts = _stage_starts(store.conn)
    flagged = requests_with_event(store.conn, Event.REQUEST_STALLED)
    out = []
    for request in store.requests_by_status(RequestStatus.OPEN):
        stage = request.plan.stages[min(request.stage, len(request.plan.stages) - 1)]
        started = starts.get((request.id, request.stage), request.created_at)
        waited = routing.calendar_for(request.packet.record.region).hours_between(started, now)
        stall = None
        if waited > stage.sla_hours:
            stall = f"stage {stage.index + 1} has waited {waited:.1f} business hours, over its {stage.sla_hours:g}h SLA"
        elif request.id in flagged:
            stall = "a stall is recorded in its narrative"
        out.append(OpenRequest(request, now - request.created_at, stall))
    return sorted(out, key=lambda o: (o.stall is None, -o.age.total_seconds()))


@dataclass(frozen=True)
class StageTiming:
    request_id: str
    stage: int
    role: str
    status: str
    started_at: datetime
    decided_at: datetime | None

    def waited(self, now: datetime) -> timedelta:
        return (self.decided_at or now) - self.started_at


def stage_timings(store: Store) -> list[StageTiming]:
    """Every stage that has started, with the role that decides it (from the request's own route plan)."""
    rows = store.conn.execute(
        "SELECT s.request_id, s.stage, s.status, s.started_at, s.decided_at, r.plan FROM stages s"
        " JOIN requests r ON r.id = s.request_id WHERE s.started_at IS NOT NULL ORDER BY s.started_at"
    ).fetchall()
    plans: dict[str, RoutePlan] = {}
    out = []
    for rid, stage, status, started, decided, plan in rows:
        roles = plans.setdefault(rid, RoutePlan.model_validate_json(plan)).stages
        role = roles[stage].role if stage < len(roles) else UNKNOWN
        out.append(StageTiming(rid, stage, role, status, datetime.fromisoformat(started),
                               datetime.fromisoformat(decided) if decided else None))
    return out


@dataclass(frozen=True)
class Finished:
    request_id: str
    status: str
    exception_type: str
    created_at: datetime
    finished_at: datetime


def finished_requests(store: Store) -> list[Finished]:
    rows = store.conn.execute(
        "SELECT id, status, exception_type, created_at, updated_at FROM requests WHERE status != 'open' ORDER BY updated_at"
    ).fetchall()
    return [Finished(rid, status, et or UNKNOWN, datetime.fromisoformat(c), datetime.fromisoformat(u)) for rid, status, et, c, u in rows]


def all_exception_types(store: Store) -> dict[str, int]:
    rows = store.conn.execute("SELECT COALESCE(exception_type, ?), COUNT(*) FROM requests GROUP BY 1", (UNKNOWN,))
    return dict(rows.fetchall())


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), so two samples give their midpoint as median."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class CheckedEntry:
    entry: LogEntry
    verified: bool
    problem: str | None


def checked_entries(conn: sqlite3.Connection, request_id: str) -> list[CheckedEntry]:
    """A request's log entries, each with its own hash recomputed and its link to the entry before it checked."""
    rows = conn.execute(
        "SELECT d.seq, d.at, d.request_id, d.event, d.actor, d.body, d.prev_hash, d.hash,"
        " (SELECT p.hash FROM decision_log p WHERE p.seq = d.seq - 1) FROM decision_log d WHERE d.request_id = ? ORDER BY d.seq",
        (request_id,),
    ).fetchall()
    out = []
    for seq, at, rid, event, actor, body, prev_hash, digest, before in rows:
        entry = LogEntry(seq, at, rid, event, actor, json.loads(body), prev_hash, digest)
        problem = None
        if decision_log.entry_hash(prev_hash, seq, at, rid, event, actor, body) != digest:
            problem = "edited after it was written: the hash does not match the content"
        elif prev_hash != (before if seq > 1 else decision_log.GENESIS):
            problem = "does not follow the entry before it: an entry was deleted, inserted or reordered"
        out.append(CheckedEntry(entry, problem is None, problem))
    return out
