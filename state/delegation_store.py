"""Delegations and reassignments as stored: who decides for whom, in which window, and which stage moved to whom."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from handoff.state.stamps import stamp


@dataclass(frozen=True)
class Delegation:
    delegator: str
    delegate: str
    starts_at: datetime
    ends_at: datetime


def grant(conn: sqlite3.Connection, delegator: str, delegate: str, starts_at: datetime, ends_at: datetime) -> None:
    """One delegation per delegator: a new grant replaces the old one."""
    conn.execute(
        "INSERT INTO delegations (delegator, delegate, starts_at, ends_at) VALUES (?,?,?,?)"
        " ON CONFLICT (delegator) DO UPDATE SET delegate = excluded.delegate, starts_at = excluded.starts_at,"
        " ends_at = excluded.ends_at",
        (delegator, delegate, stamp(starts_at), stamp(ends_at)),
    )


def revoke(conn: sqlite3.Connection, delegator: str) -> Delegation | None:
    """End a delegation now; returns what was revoked, or None if there was none."""
    found = get(conn, delegator)
    conn.execute("DELETE FROM delegations WHERE delegator = ?", (delegator,))
    return found


def get(conn: sqlite3.Connection, delegator: str) -> Delegation | None:
    """The delegator's delegation, whatever its window."""
    row = conn.execute("SELECT delegator, delegate, starts_at, ends_at FROM delegations WHERE delegator = ?", (delegator,)).fetchone()
    return _delegation(row) if row else None


def active(conn: sqlite3.Connection, now: datetime) -> dict[str, str]:
    """delegator -> delegate for every window that holds `now` (start inclusive, end exclusive)."""
    rows = conn.execute(
        "SELECT delegator, delegate FROM delegations WHERE starts_at <= ? AND ends_at > ?", (stamp(now), stamp(now))
    ).fetchall()
    return {delegator: delegate for delegator, delegate in rows}


def reassign(conn: sqlite3.Connection, request_id: str, stage: int, person: str, now: datetime) -> None:
    """Give one stage to one person; a later reassignment of the same stage replaces it."""
    conn.execute(
        "INSERT INTO reassignments (request_id, stage, person, at) VALUES (?,?,?,?)"
        " ON CONFLICT (request_id, stage) DO UPDATE SET person = excluded.person, at = excluded.at",
        (request_id, stage, person, stamp(now)),
    )


def assignee(conn: sqlite3.Connection, request_id: str, stage: int) -> str | None:
    """The person a stage was reassigned to, if anyone."""
    row = conn.execute("SELECT person FROM reassignments WHERE request_id = ? AND stage = ?", (request_id, stage)).fetchone()
    return row[0] if row else None


def _delegation(row: tuple) -> Delegation:
    return Delegation(row[0], row[1], datetime.fromisoformat(row[2]), datetime.fromisoformat(row[3]))
