"""The scheduler's tables: stage due times, reminders sent, one alert per stall, daily digests."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from handoff.state.stamps import stamp

from .store import Store, in_chunks

# A stage that no longer needs the scheduler keeps a due time nobody reaches, so it never shows up as due or unplanned.
NEVER = "9999-12-31T00:00:00.000000+00:00"
# Reminder rows per INSERT: five parameters each, far under both databases' limits.
CLAIM_ROWS = 100



@dataclass(frozen=True)
class DueStage:
    request_id: str
    stage: int
    step: int
    started_at: datetime


@dataclass(frozen=True)
class StageMarks:
    """What a stall alert says about one stage besides the request: since when, how far escalated, where its card is."""

    started_at: datetime | None
    escalation_level: int
    posted: frozenset[tuple[str, str]]  # (platform, address) of each card posted for the stage


@dataclass(frozen=True)
class Reminder:
    request_id: str
    stage: int
    step: int
    recipient: str


@dataclass(frozen=True)
class Alert:
    id: int
    subject: str
    request_id: str | None
    text: str
    opened_at: datetime
    platform: str | None
    conversation: str | None
    message_id: str | None


class ScheduleStore:
    """Synchronous, short methods over the Store's connection; callers group them with `store.transaction()`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def conn(self):
        return self.store.conn

    # ---- stage due times

    def unplanned(self, limit: int) -> list[DueStage]:
        rows = self.conn.execute(
            "SELECT request_id, stage, due_step, started_at FROM stages WHERE status = 'pending' AND due_at IS NULL LIMIT ?",
            (limit,),
        ).fetchall()
        return [DueStage(r[0], r[1], r[2], datetime.fromisoformat(r[3])) for r in rows if r[3]]

    def due(self, now: datetime, limit: int) -> list[DueStage]:
        rows = self.conn.execute(
            "SELECT request_id, stage, due_step, started_at FROM stages"
            " WHERE status = 'pending' AND due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?",
            (stamp(now), limit),
        ).fetchall()
        return [DueStage(r[0], r[1], r[2], datetime.fromisoformat(r[3])) for r in rows]

    def set_due_many(self, plans: Iterable[tuple[str, int, datetime | None, int]]) -> None:
        """Schedule each (request id, stage, due at, step)'s next step, None retiring it for good; one executemany."""
        self.conn.executemany(
            "UPDATE stages SET due_at = ?, due_step = ? WHERE request_id = ? AND stage = ?",
            [(stamp(due_at) if due_at else NEVER, step, request_id, stage) for request_id, stage, due_at, step in plans],
        )

    def next_due(self) -> datetime | None:
        """The earliest scheduled step of any pending stage."""
        row = self.conn.execute(
            "SELECT MIN(due_at) FROM stages WHERE status = 'pending' AND due_at IS NOT NULL AND due_at < ?", (NEVER,)
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row[0] else None

    def remind_each_once(self, reminders: Collection[Reminder], now: datetime) -> set[Reminder]:
        """The reminders sent for the first time, each claimed once across ticks and replicas; one statement per CLAIM_ROWS."""
        wanted, claimed = list(dict.fromkeys(reminders)), set()
        for start in range(0, len(wanted), CLAIM_ROWS):
            chunk = wanted[start:start + CLAIM_ROWS]
            # RETURNING names only the rows this statement inserted: a reminder claimed before (by an earlier tick or a
            # replica) conflicts on the table's key and is left out.
            rows = self.conn.execute(
                "INSERT INTO reminders (request_id, stage, step, recipient, sent_at) VALUES "
                + ",".join(["(?,?,?,?,?)"] * len(chunk)) + " ON CONFLICT DO NOTHING RETURNING request_id, stage, step, recipient",
                [value for r in chunk for value in (r.request_id, r.stage, r.step, r.recipient, stamp(now))],
            ).fetchall()
            claimed.update(Reminder(*row) for row in rows)
        return claimed

    def mark_escalated(self, moves: Collection[tuple[str, int, int, int]], now: datetime) -> set[tuple[str, int]]:
        """The (request id, stage) of each (request id, stage, from level, to level) move this caller made.

        A move applies only if the stage is still at `from level`, so each step of a chain is taken once across replicas;
        one that another replica got to first is left out. One statement per CLAIM_ROWS moves.
        """
        moves, made = list(moves), set()
        for start in range(0, len(moves), CLAIM_ROWS):
            chunk = moves[start:start + CLAIM_ROWS]
            # VALUES columns are column1..column4 in both SQLite (3.33+ for UPDATE ... FROM) and PostgreSQL.
            rows = self.conn.execute(
                "UPDATE stages SET escalation_level = v.column4, escalated_at = ? FROM (VALUES "
                + ",".join(["(?,?,?,?)"] * len(chunk)) + ") AS v WHERE stages.request_id = v.column1 AND stages.stage = v.column2"
                " AND stages.escalation_level = v.column3 RETURNING request_id, stage",
                [stamp(now), *(value for move in chunk for value in move)],
            ).fetchall()
            made.update((request_id, stage) for request_id, stage in rows)
        return made

    def escalation_level(self, request_id: str, stage: int) -> int:
        """How many steps along its escalation chain the stage is; 0 before its SLA is passed."""
        row = self.conn.execute(
            "SELECT escalation_level FROM stages WHERE request_id = ? AND stage = ?", (request_id, stage)
        ).fetchone()
        return row[0] if row else 0

    def stage_marks(self, request_ids: Collection[str]) -> dict[tuple[str, int], StageMarks]:
        """StageMarks of every stage of the requests, keyed (request id, stage): two statements per chunk of ids."""
        posted: dict[tuple[str, int], set[tuple[str, str]]] = {}
        found: dict[tuple[str, int], StageMarks] = {}
        for chunk, marks in in_chunks(request_ids):
            for request_id, stage, platform, address in self.conn.execute(
                f"SELECT request_id, stage, platform, address FROM cards WHERE request_id IN ({marks})", chunk
            ).fetchall():
                posted.setdefault((request_id, stage), set()).add((platform, address))
            for request_id, stage, started_at, level in self.conn.execute(
                f"SELECT request_id, stage, started_at, escalation_level FROM stages WHERE request_id IN ({marks})", chunk
            ).fetchall():
                found[request_id, stage] = StageMarks(datetime.fromisoformat(started_at) if started_at else None, level,
                                                      frozenset(posted.get((request_id, stage), ())))
        return found

    def voters(self, request_ids: Collection[str]) -> dict[tuple[str, int], set[str]]:
        """Who has voted, per (request id, stage), for many requests in one statement per chunk."""
        found: dict[tuple[str, int], set[str]] = {}
        for chunk, marks in in_chunks(request_ids):
            for request_id, stage, person in self.conn.execute(
                f"SELECT request_id, stage, person FROM votes WHERE request_id IN ({marks})", chunk
            ).fetchall():
                found.setdefault((request_id, stage), set()).add(person)
        return found

    # ---- alerts: one per stall, updated in place

    _ALERT = "id, subject, request_id, text, opened_at, platform, conversation, message_id"

    @staticmethod
    def _alert(row: tuple) -> Alert:
        return Alert(row[0], row[1], row[2], row[3], datetime.fromisoformat(row[4]), row[5], row[6], row[7])

    def alerts(self, subjects: Collection[str]) -> dict[str, Alert]:
        """The alert of each subject that ever had one, resolved ones included; one statement per chunk."""
        found: dict[str, Alert] = {}
        for chunk, marks in in_chunks(subjects):
            rows = self.conn.execute(f"SELECT {self._ALERT} FROM alerts WHERE subject IN ({marks})", chunk).fetchall()
            found.update((alert.subject, alert) for alert in map(self._alert, rows))
        return found

    _RAISE = (
        "INSERT INTO alerts (subject, request_id, text, opened_at, next_try_at) VALUES (?,?,?,?,?)"
        " ON CONFLICT (subject) DO UPDATE SET text = excluded.text, resolved_at = NULL, dirty = 1,"
        " next_try_at = excluded.next_try_at WHERE alerts.text != excluded.text OR alerts.resolved_at IS NOT NULL"
    )

    def raise_alert(self, subject: str, request_id: str | None, text: str, now: datetime) -> bool:
        """Open (or reopen) the alert for `subject`, or change its text; True when the chat copy must change."""
        return self.conn.execute(self._RAISE, (subject, request_id, text, stamp(now), stamp(now))).rowcount == 1

    def raise_alerts(self, alerts: Iterable[tuple[str, str | None, str]], now: datetime) -> None:
        """raise_alert for each (subject, request id, text) in one executemany (pipelined on PostgreSQL)."""
        if rows := [(subject, request_id, text, stamp(now), stamp(now)) for subject, request_id, text in alerts]:
            self.conn.executemany(self._RAISE, rows)

    def resolve_alert(self, subject: str, text: str, now: datetime) -> None:
        self.conn.execute(
            "UPDATE alerts SET text = ?, resolved_at = ?, dirty = 1, next_try_at = ? WHERE subject = ? AND resolved_at IS NULL",
            (text, stamp(now), stamp(now), subject),
        )

    def open_alerts(self) -> list[Alert]:
        rows = self.conn.execute(f"SELECT {self._ALERT} FROM alerts WHERE resolved_at IS NULL").fetchall()
        return [self._alert(r) for r in rows]

    def unsent_alerts(self, now: datetime, limit: int) -> list[Alert]:
        rows = self.conn.execute(
            f"SELECT {self._ALERT} FROM alerts WHERE dirty = 1 AND next_try_at <= ? ORDER BY next_try_at LIMIT ?",
            (stamp(now), limit),
        ).fetchall()
        return [self._alert(r) for r in rows]

    def alert_sent(self, alert: Alert, platform: str, conversation: str | None, message_id: str | None) -> None:
        # Only the text that was sent is clean: a change made meanwhile keeps the alert dirty.
        self.conn.execute(
            "UPDATE alerts SET platform = ?, conversation = ?, message_id = ?, dirty = CASE WHEN text = ? THEN 0 ELSE 1 END"
            " WHERE id = ?",
            (platform, conversation, message_id, alert.text, alert.id),
        )

    def forget_message(self, alert: Alert) -> None:
        self.conn.execute("UPDATE alerts SET conversation = NULL, message_id = NULL, dirty = 1 WHERE id = ?", (alert.id,))

    def retry_alert(self, alert: Alert, at: datetime) -> None:
        self.conn.execute("UPDATE alerts SET next_try_at = ? WHERE id = ?", (stamp(at), alert.id))

    # ---- the daily digest

    def digest_once(self, day: date, now: datetime) -> bool:
        cursor = self.conn.execute("INSERT OR IGNORE INTO digests (day, sent_at) VALUES (?,?)", (day.isoformat(), stamp(now)))
        return cursor.rowcount == 1

    def digest_sent(self, day: date) -> bool:
        return self.conn.execute("SELECT 1 FROM digests WHERE day = ?", (day.isoformat(),)).fetchone() is not None

    def aging(self) -> list[tuple[str | None, str | None, int, datetime]]:
        """Open requests per (business unit, exception type): how many, and when the oldest arrived."""
        rows = self.conn.execute(
            "SELECT business_unit, exception_type, COUNT(*), MIN(created_at) FROM requests WHERE status = 'open'"
            " GROUP BY business_unit, exception_type ORDER BY MIN(created_at)"
        ).fetchall()
        return [(r[0], r[1], r[2], datetime.fromisoformat(r[3])) for r in rows]

    def stuck_writes(self, attempts: int) -> list[tuple[int, str, int, str | None]]:
        """ERP write-backs still retrying after `attempts` tries: (outbox id, request id, attempts, last error)."""
        return self.conn.execute(
            "SELECT id, request_id, attempts, last_error FROM outbox WHERE status = 'pending' AND kind = 'erp_write'"
            " AND attempts >= ?",
            (attempts,),
        ).fetchall()
