"""Reconciliation cursors: how far each ERP has been polled, kept so a restart resumes where it left off."""

from __future__ import annotations

import sqlite3
from datetime import datetime


def get(conn: sqlite3.Connection, source: str) -> str | None:
    """The cursor the ERP issued at the last poll, or None before the first."""
    row = conn.execute("SELECT cursor FROM erp_cursors WHERE source = ?", (source,)).fetchone()
    return row[0] if row else None


def stored_at(conn: sqlite3.Connection, source: str) -> datetime | None:
    """When the cursor was last stored (by Handoff's clock), or None before the first poll."""
    row = conn.execute("SELECT updated_at FROM erp_cursors WHERE source = ?", (source,)).fetchone()
    return datetime.fromisoformat(row[0]) if row else None


def put(conn: sqlite3.Connection, source: str, cursor: str, now: datetime) -> None:
    """Remember where the next poll starts."""
    conn.execute(
        "INSERT INTO erp_cursors (source, cursor, updated_at) VALUES (?,?,?)"
        " ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        (source, cursor, now.isoformat(timespec="microseconds")),
    )
