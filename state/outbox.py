"""The persistent outbox: every side effect waits here until it is done, retried, or dead-lettered."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from handoff.state.stamps import stamp


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    request_id: str | None
    payload: dict
    idempotency_key: str
    status: str
    attempts: int
    next_at: str
    last_error: str | None
    created_at: str
    # Times a worker took the item to deliver it, this claim included; more than one means an earlier claim was cut
    # short (a crash, a lost answer), and its effect may already exist.
    claims: int


_COLUMNS = "id, kind, request_id, payload, idempotency_key, status, attempts, next_at, last_error, created_at, claims"


def _item(row: tuple) -> OutboxItem:
    id_, kind, request_id, payload, key, status, attempts, next_at, last_error, created_at, claims = row
    return OutboxItem(id_, kind, request_id, json.loads(payload), key, status, attempts, next_at, last_error, created_at, claims)



_ENQUEUE = "INSERT OR IGNORE INTO outbox (kind, request_id, payload, idempotency_key, next_at, created_at) VALUES (?,?,?,?,?,?)"


def _queued(at: datetime, kind: str, payload: dict, key: str, request_id: str | None) -> tuple:
    return kind, request_id, json.dumps(payload, sort_keys=True, default=str), key, stamp(at), stamp(at)


def enqueue(conn: sqlite3.Connection, at: datetime, kind: str, payload: dict, key: str, request_id: str | None) -> bool:
    """Queue a side effect once per idempotency key; a second enqueue of the same key is a no-op."""
    return conn.execute(_ENQUEUE, _queued(at, kind, payload, key, request_id)).rowcount == 1


def enqueue_many(conn: sqlite3.Connection, at: datetime, effects: Sequence[tuple[str, dict, str, str | None]]) -> None:
    """enqueue() for each (kind, payload, key, request id), in order, in one executemany (pipelined on PostgreSQL)."""
    conn.executemany(_ENQUEUE, [_queued(at, *effect) for effect in effects])


def claim_due(conn: sqlite3.Connection, now: datetime, limit: int, lease: timedelta) -> list[OutboxItem]:
    """Take due items and push their next_at out by a lease, so a crash mid-delivery retries them later."""
    sql = f"SELECT {_COLUMNS} FROM outbox WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?"
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        # Replicas claim side by side: rows another replica is claiming are skipped, not waited for or sent twice.
        sql += " FOR UPDATE SKIP LOCKED"
    rows = conn.execute(sql, (stamp(now), limit)).fetchall()
    if rows:
        conn.executemany(
            "UPDATE outbox SET next_at = ?, claims = claims + 1 WHERE id = ?", [(stamp(now + lease), row[0]) for row in rows]
        )
    return [replace(item, claims=item.claims + 1) for item in map(_item, rows)]


def complete(conn: sqlite3.Connection, item_id: int, at: datetime) -> None:
    conn.execute("UPDATE outbox SET status = 'done', done_at = ?, attempts = attempts + 1 WHERE id = ?", (stamp(at), item_id))


def reschedule(conn: sqlite3.Connection, item_id: int, next_at: datetime, error: str) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?",
        (stamp(next_at), error, item_id),
    )


def postpone(conn: sqlite3.Connection, item_id: int, next_at: datetime) -> None:
    """Hold an item for its send slot or the platform's Retry-After: not a failed attempt, so no step toward dead letters.

    The claim is given back too: nothing was sent, so the next claim has nothing to look for.
    """
    conn.execute(
        "UPDATE outbox SET next_at = ?, claims = CASE WHEN claims > 0 THEN claims - 1 ELSE 0 END WHERE id = ?",
        (stamp(next_at), item_id),
    )


def bury(conn: sqlite3.Connection, item_id: int, error: str) -> None:
    """Move to dead letters: no more automatic attempts; a human retries or drops it."""
    conn.execute("UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?", (error, item_id))


def revive(conn: sqlite3.Connection, item_id: int, now: datetime) -> bool:
    cursor = conn.execute(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_at = ? WHERE id = ? AND status = 'dead'", (stamp(now), item_id)
    )
    return cursor.rowcount == 1


def drop(conn: sqlite3.Connection, item_id: int, reason: str) -> bool:
    cursor = conn.execute(
        "UPDATE outbox SET status = 'dropped', last_error = ? WHERE id = ? AND status IN ('dead', 'pending')", (reason, item_id)
    )
    return cursor.rowcount == 1


def next_due(conn: sqlite3.Connection) -> datetime | None:
    """When the earliest pending item falls due (a paced post's slot, a retry's backoff); None when none waits."""
    [(at,)] = conn.execute("SELECT MIN(next_at) FROM outbox WHERE status = 'pending'")
    return datetime.fromisoformat(at) if at else None


def items(conn: sqlite3.Connection, status: str | None = None) -> list[OutboxItem]:
    if status is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY id").fetchall()
    else:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE status = ? ORDER BY id", (status,)).fetchall()
    return [_item(row) for row in rows]


def pending(conn: sqlite3.Connection, request_id: str, kind: str) -> bool:
    """Whether an item of `kind` for the request is still waiting to go out."""
    row = conn.execute(
        "SELECT 1 FROM outbox WHERE request_id = ? AND kind = ? AND status = 'pending' LIMIT 1", (request_id, kind)
    ).fetchone()
    return row is not None


def depth(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
