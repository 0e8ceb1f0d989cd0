"""The append-only, hash-chained decision log: each entry commits to the one before it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

GENESIS = "0" * 64


@dataclass(frozen=True)
class LogEntry:
    seq: int
    at: str
    request_id: str | None
    event: str
    actor: str
    body: dict
    prev_hash: str
    hash: str

    def as_dict(self) -> dict:
        return {
            "seq": self.seq,
            "at": self.at,
            "request_id": self.request_id,
            "event": self.event,
            "actor": self.actor,
            "body": self.body,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def entry_hash(prev_hash: str, seq: int, at: str, request_id: str | None, event: str, actor: str, body_json: str) -> str:
    material = json.dumps([prev_hash, seq, at, request_id, event, actor, body_json], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)


def append(conn: sqlite3.Connection, at: datetime, request_id: str | None, event: str, actor: str, body: dict) -> LogEntry:
    """Append one entry. Call inside the transaction that makes the fact true, so both land or neither."""
    return append_many(conn, at, [(request_id, event, actor, body)])[0]


def append_many(conn: sqlite3.Connection, at: datetime, facts: Sequence[tuple[str | None, str, str, dict]]) -> list[LogEntry]:
    """Append (request id, event, actor, body) entries in order, chained, with one head read and one executemany."""
    # SQLite's BEGIN IMMEDIATE already lets one writer in at a time; on PostgreSQL, replicas appending at once would
    # read the same head and fork the chain, so they queue on a lock held until their transaction ends.
    if lock := getattr(conn, "xact_lock", None):
        lock("decision_log")
    last = conn.execute("SELECT seq, hash FROM decision_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at_text = at.isoformat(timespec="microseconds")
    rows: list[tuple] = []
    for request_id, event, actor, body in facts:
        body_json = canonical(body)
        digest = entry_hash(prev_hash, seq, at_text, request_id, event, actor, body_json)
        rows.append((seq, at_text, request_id, event, actor, body_json, prev_hash, digest))
        seq, prev_hash = seq + 1, digest
    conn.executemany(
        "INSERT INTO decision_log (seq, at, request_id, event, actor, body, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)", rows
    )
    return [_row_to_entry(row) for row in rows]


def _row_to_entry(row: tuple) -> LogEntry:
    seq, at, request_id, event, actor, body, prev_hash, digest = row
    return LogEntry(seq, at, request_id, event, actor, json.loads(body), prev_hash, digest)


_COLUMNS = "seq, at, request_id, event, actor, body, prev_hash, hash"


def entries(conn: sqlite3.Connection, request_id: str | None = None) -> Iterator[LogEntry]:
    if request_id is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM decision_log ORDER BY seq")
    else:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM decision_log WHERE request_id = ? ORDER BY seq", (request_id,))
    for row in rows:
        yield _row_to_entry(row)


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    problems: tuple[str, ...]
    head: str


def verify(conn: sqlite3.Connection) -> Verification:
    """Recompute the chain; name every entry that was edited, deleted or moved."""
    problems: list[str] = []
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    for seq, at, request_id, event, actor, body, prev_hash, digest in conn.execute(
        f"SELECT {_COLUMNS} FROM decision_log ORDER BY seq"
    ):
        checked += 1
        if seq != expected_seq:
            problems.append(f"entry {expected_seq}" + (f"..{seq - 1}" if seq - 1 > expected_seq else "") + " missing: deleted from the log")
        if prev_hash != expected_prev:
            problems.append(f"entry {seq} ({event}) does not follow the entry before it: an entry was deleted, inserted or reordered")
        if entry_hash(prev_hash, seq, at, request_id, event, actor, body) != digest:
            problems.append(f"entry {seq} ({event}, request {request_id}) was edited after it was written")
        expected_prev, expected_seq = digest, seq + 1
    return Verification(ok=not problems, checked=checked, problems=tuple(problems), head=expected_prev)


def export(conn: sqlite3.Connection, fmt: str) -> str:
    """The whole log as JSON Lines or CSV (body as a JSON column), in chain order."""
    if fmt == "jsonl":
        return "".join(json.dumps(entry.as_dict(), sort_keys=True) + "\n" for entry in entries(conn))
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["seq", "at", "request_id", "event", "actor", "body", "prev_hash", "hash"])
        for entry in entries(conn):
            writer.writerow([entry.seq, entry.at, entry.request_id or "", entry.event, entry.actor, canonical(entry.body), entry.prev_hash, entry.hash])
        return out.getvalue()
    raise ValueError(f"unknown export format {fmt!r}: use jsonl or csv")
