"""The SQLite store (WAL): inbox, requests, stages, votes, cards, conversations, plus the log and outbox tables."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from handoff.bot.core.models import (
    ApprovalPacket,
    Platform,
    PostedCard,
    RecordRef,
    RequestState,
    RequestStatus,
    RoutePlan,
    SourceEvent,
    StageState,
    Target,
    Vote,
)
from handoff.bot.core.ports import Clock
from handoff.state.stamps import stamp

from . import decision_log, pg
from .migrations import migrate

# Long enough for enrichment's retries against a slow ERP; only PostgreSQL replicas lease inbox events.
INBOX_LEASE = timedelta(minutes=2)


# Ids per `IN (...)` list: well under SQLite's (32,766) and PostgreSQL's (65,535) limits on parameters.
CHUNK = 512


def in_chunks(values: Collection) -> Iterator[tuple[tuple, str]]:
    """(values, "?,?,…") per chunk of at most CHUNK distinct values, for `WHERE x IN (...)` reads.

    A chunk is padded to a power of two by repeating its last value (harmless in IN): a few statement texts per query
    rather than one per batch size, for the translation cache and PostgreSQL's prepared statements.
    """
    distinct = tuple(dict.fromkeys(values))
    for start in range(0, len(distinct), CHUNK):
        chunk = distinct[start:start + CHUNK]
        width = 1 << (len(chunk) - 1).bit_length()
        yield chunk + chunk[-1:] * (width - len(chunk)), ",".join("?" * width)


@dataclass(frozen=True)
class InboxItem:
    id: int
    event: SourceEvent
    attempts: int


class Store:
    """One SQLite database. Methods are synchronous and short; `transaction()` groups them atomically."""

    def __init__(self, path: str | Path, clock: Clock, inbox_lease: timedelta = INBOX_LEASE) -> None:
        self.path = str(path)
        self.clock = clock
        self.inbox_lease = inbox_lease
        self._depth = 0
        self._leading: dict[str, int] = {}  # name -> the PostgreSQL session that holds its lock
        if pg.is_postgres(self.path):
            self.conn = pg.connect(self.path, clock.now)
            return
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so writers queue up instead of failing mid-way.
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        if self.path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        migrate(self.conn)

    def close(self) -> None:
        self.conn.close()

    def try_lead(self, name: str) -> bool:
        """True while this process leads `name` (e.g. the scheduler) among replicas sharing the database.

        SQLite is one machine, so its one process always leads. On PostgreSQL the lead is a session advisory lock:
        it passes to another replica as soon as the holder's connection ends, including when its process dies, and
        a reconnected process must win it again like any other replica.
        """
        lock = getattr(self.conn, "try_session_lock", None)
        if lock is None:
            return True
        if name in self._leading:
            # Finds a connection lost since the last round now, before the leader's work rather than in the middle of it.
            self.conn.execute("SELECT 1")
            if self._leading[name] == self.conn.session:
                return True
            del self._leading[name]
        if lock(name):
            self._leading[name] = self.conn.session
        return name in self._leading

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; nested calls join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    # ---- inbox: webhooks stored before they are acknowledged

    def accept_event(self, event: SourceEvent) -> tuple[int, bool]:
        """Store a webhook once per dedup key. Returns (inbox id, whether it was new)."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO inbox (dedup_key, source, model, record_id, received_at, hint, next_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (
                    event.dedup_key,
                    event.ref.source,
                    event.ref.model,
                    event.ref.record_id,
                    stamp(event.received_at),
                    json.dumps(event.hint, sort_keys=True, default=str),
                    stamp(event.received_at),
                ),
            )
            if cursor.rowcount == 1:
                return cursor.lastrowid, True
            row = conn.execute("SELECT id FROM inbox WHERE dedup_key = ?", (event.dedup_key,)).fetchone()
            return row[0], False

    def _leased(self, columns: str, kind: str, now: datetime, limit: int) -> list[tuple]:
        """Due pending inbox rows of one kind, oldest first; on PostgreSQL each is leased to this replica."""
        sql = f"SELECT {columns} FROM inbox WHERE kind = ? AND status = 'pending' AND next_at <= ? ORDER BY id LIMIT ?"
        if not self._shared:
            return self.conn.execute(sql, (kind, stamp(now), limit)).fetchall()
        # Replicas share the inbox: each row is leased to one of them, and comes back to any replica once the
        # lease runs out if its holder dies mid-way.
        with self.transaction() as conn:
            rows = conn.execute(sql + " FOR UPDATE SKIP LOCKED", (kind, stamp(now), limit)).fetchall()
            conn.executemany("UPDATE inbox SET next_at = ? WHERE id = ?", [(stamp(now + self.inbox_lease), r[0]) for r in rows])
        return rows

    @property
    def _shared(self) -> bool:
        """True on PostgreSQL, where several replicas may read the same inbox."""
        return getattr(self.conn, "dialect", "sqlite") == "postgresql"

    def due_events(self, now: datetime, limit: int = 50) -> list[InboxItem]:
        rows = self._leased("id, dedup_key, source, model, record_id, received_at, hint, attempts", "event", now, limit)
        return [
            InboxItem(
                id=row[0],
                event=SourceEvent(
                    ref=RecordRef(source=row[2], model=row[3], record_id=row[4]),
                    dedup_key=row[1],
                    received_at=datetime.fromisoformat(row[5]),
                    hint=json.loads(row[6]),
                ),
                attempts=row[7],
            )
            for row in rows
        ]

    def settle_event(self, inbox_id: int, note: str, request_id: str | None = None) -> None:
        self.conn.execute(
            "UPDATE inbox SET status = 'done', note = ?, request_id = ?, attempts = attempts + 1 WHERE id = ?",
            (note, request_id, inbox_id),
        )

    def defer_event(self, inbox_id: int, next_at: datetime, note: str) -> None:
        self.conn.execute(
            "UPDATE inbox SET attempts = attempts + 1, next_at = ?, note = ? WHERE id = ?", (stamp(next_at), note, inbox_id)
        )

    def inbox_depth(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM inbox GROUP BY status").fetchall())

    # ---- clicks: kept in the inbox before the chat platform gets its answer

    def keep_click(self, key: str, platform: str, request_id: str, click: str, now: datetime) -> int | None:
        """Store a click once per key (one insert, one commit); its inbox id, or None for a delivery already kept.

        On PostgreSQL the clicking replica holds a lease on it, so no other replica acts on it while it does; a
        replica that dies leaves it to the others once the lease runs out.
        """
        next_at = now + self.inbox_lease if self._shared else now
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO inbox (kind, dedup_key, source, model, record_id, received_at, hint, next_at)"
                " VALUES ('click', ?, ?, 'click', ?, ?, ?, ?)",
                (key, platform, request_id, stamp(now), click, stamp(next_at)),
            )
            return cursor.lastrowid if cursor.rowcount == 1 else None

    def due_clicks(self, now: datetime, limit: int = 50) -> list[tuple[int, str]]:
        """(inbox id, click as stored) for clicks nobody finished: their process died, or its lease ran out."""
        return [(row[0], row[1]) for row in self._leased("id, hint", "click", now, limit)]

    def settle_click(self, inbox_id: int, note: str) -> bool:
        """Mark a click handled; False when it already was, so a second run of the same click counts nothing."""
        cursor = self.conn.execute(
            "UPDATE inbox SET status = 'done', note = ?, attempts = attempts + 1 WHERE id = ? AND status = 'pending'",
            (note, inbox_id),
        )
        return cursor.rowcount == 1

    def first_delivery(self, key: str) -> bool:
        """True the first time a chat platform delivery id is seen: platform retries are not processed twice."""
        cursor = self.conn.execute("INSERT OR IGNORE INTO seen_deliveries (key, at) VALUES (?, ?)", (key, stamp(self.clock.now())))
        return cursor.rowcount == 1

    # ---- requests

    def create_request(
        self, packet: ApprovalPacket, plan: RoutePlan, platform: Platform, requester: str | None, now: datetime
    ) -> RequestState:
        record = packet.record
        self.conn.execute(
            "INSERT INTO requests (id, ref_key, source, model, record_id, reference, status, version, stage, platform,"
            " requester, business_unit, exception_type, packet, plan, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                packet.request_id,
                record.ref.key,
                record.ref.source,
                record.ref.model,
                record.ref.record_id,
                record.reference,
                RequestStatus.OPEN.value,
                packet.version,
                0,
                platform,
                requester,
                record.business_unit,
                record.exception_type,
                packet.model_dump_json(),
                plan.model_dump_json(),
                stamp(now),
                stamp(now),
            ),
        )
        self.conn.executemany(
            "INSERT INTO stages (request_id, stage, status, started_at) VALUES (?,?,?,?)",
            [
                (packet.request_id, s.index, "pending" if s.index == 0 else "waiting", stamp(now) if s.index == 0 else None)
                for s in plan.stages
            ],
        )
        request = self.get_request(packet.request_id)
        assert request is not None
        return request

    @staticmethod
    def new_request_id() -> str:
        return "r-" + uuid.uuid4().hex[:12]

    _REQUEST_COLUMNS = (
        "id, source, model, record_id, reference, status, version, stage, platform, requester, packet, plan,"
        " created_at, updated_at"
    )

    def _request(self, row: tuple | None) -> RequestState | None:
        if row is None:
            return None
        (id_, source, model, record_id, reference, status, version, stage, platform, requester, packet, plan,
         created_at, updated_at) = row
        return RequestState(
            id=id_,
            ref=RecordRef(source=source, model=model, record_id=record_id),
            reference=reference,
            status=RequestStatus(status),
            version=version,
            stage=stage,
            platform=platform,
            requester=requester,
            packet=ApprovalPacket.model_validate_json(packet),
            plan=RoutePlan.model_validate_json(plan),
            created_at=datetime.fromisoformat(created_at),
            updated_at=datetime.fromisoformat(updated_at),
        )

    def get_request(self, request_id: str) -> RequestState | None:
        row = self.conn.execute(f"SELECT {self._REQUEST_COLUMNS} FROM requests WHERE id = ?", (request_id,)).fetchone()
        return self._request(row)

    def get_requests(self, request_ids: Collection[str]) -> dict[str, RequestState]:
        """Many requests by id, one statement per chunk: a scheduler tick reads hundreds, each a round trip on PostgreSQL."""
        found: dict[str, RequestState] = {}
        for chunk, marks in in_chunks(request_ids):
            rows = self.conn.execute(f"SELECT {self._REQUEST_COLUMNS} FROM requests WHERE id IN ({marks})", chunk).fetchall()
            found.update((request.id, request) for request in map(self._request, rows) if request is not None)
        return found

    def open_request_for(self, ref: RecordRef) -> RequestState | None:
        row = self.conn.execute(
            f"SELECT {self._REQUEST_COLUMNS} FROM requests WHERE ref_key = ? AND status = 'open'", (ref.key,)
        ).fetchone()
        return self._request(row)

    def find_requests(self, text: str, limit: int = 5) -> list[RequestState]:
        """Exact reference first, else references ending with or containing the text (newest first)."""
        rows = self.conn.execute(
            f"SELECT {self._REQUEST_COLUMNS} FROM requests WHERE lower(reference) = lower(?) ORDER BY created_at DESC LIMIT 1",
            (text,),
        ).fetchall()
        if not rows:
            rows = self.conn.execute(
                f"SELECT {self._REQUEST_COLUMNS} FROM requests WHERE lower(reference) LIKE lower(?) ESCAPE '\\'"
                " ORDER BY created_at DESC LIMIT ?",
                ("%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", limit),
            ).fetchall()
        return [r for r in (self._request(row) for row in rows) if r is not None]

    def requests_by_status(self, status: RequestStatus) -> list[RequestState]:
        rows = self.conn.execute(
            f"SELECT {self._REQUEST_COLUMNS} FROM requests WHERE status = ? ORDER BY created_at", (status.value,)
        ).fetchall()
        return [r for r in (self._request(row) for row in rows) if r is not None]

    def incomplete_requests(self) -> list[RequestState]:
        """Open requests whose packet holds the webhook's figures only (the ERP could not be read), oldest first."""
        # Matched on the packet's JSON text, so the periodic re-read neither loads nor parses every open request:
        # at 100,000 open that was seconds of CPU per round and hundreds of MB of transient memory (`handoff bench`).
        rows = self.conn.execute(
            f"SELECT {self._REQUEST_COLUMNS} FROM requests WHERE status = ? AND packet NOT LIKE ? ORDER BY created_at",
            (RequestStatus.OPEN.value, '%"incomplete_reason":null%'),
        ).fetchall()
        return [r for r in (self._request(row) for row in rows) if r is not None]

    def replace_packet(self, request_id: str, packet: ApprovalPacket, now: datetime) -> None:
        self.conn.execute(
            "UPDATE requests SET packet = ?, version = ?, reference = ?, updated_at = ? WHERE id = ?",
            (packet.model_dump_json(), packet.version, packet.record.reference, stamp(now), request_id),
        )

    def set_status(self, request_id: str, status: RequestStatus, now: datetime) -> None:
        self.conn.execute("UPDATE requests SET status = ?, updated_at = ? WHERE id = ?", (status.value, stamp(now), request_id))

    def advance_stage(self, request_id: str, stage: int, now: datetime) -> None:
        self.conn.execute("UPDATE requests SET stage = ?, updated_at = ? WHERE id = ?", (stage, stamp(now), request_id))
        self.conn.execute(
            "UPDATE stages SET status = 'pending', started_at = ? WHERE request_id = ? AND stage = ?", (stamp(now), request_id, stage)
        )

    # ---- stages and votes

    def stages(self, request_id: str) -> list[StageState]:
        rows = self.conn.execute(
            "SELECT stage, status, started_at, decided_at, decided_by FROM stages WHERE request_id = ? ORDER BY stage",
            (request_id,),
        ).fetchall()
        return [
            StageState(
                stage=row[0],
                status=row[1],
                started_at=datetime.fromisoformat(row[2]) if row[2] else None,
                decided_at=datetime.fromisoformat(row[3]) if row[3] else None,
                decided_by=row[4],
            )
            for row in rows
        ]

    def decide_stage(self, request_id: str, stage: int, status: str, by: str, now: datetime) -> bool:
        """Compare-and-set: only a pending stage can be decided, so two racing clicks yield one winner."""
        cursor = self.conn.execute(
            "UPDATE stages SET status = ?, decided_at = ?, decided_by = ? WHERE request_id = ? AND stage = ? AND status = 'pending'",
            (status, stamp(now), by, request_id, stage),
        )
        return cursor.rowcount == 1

    def reopen_stage(self, request_id: str, stage: int, now: datetime) -> None:
        """Undo a stage's decision that never reached the ERP; the log keeps the story, votes start over."""
        self.conn.execute(
            "UPDATE stages SET status = 'pending', decided_at = NULL, decided_by = NULL, started_at = ?"
            " WHERE request_id = ? AND stage = ?",
            (stamp(now), request_id, stage),
        )
        self.conn.execute("DELETE FROM votes WHERE request_id = ? AND stage = ?", (request_id, stage))
        self.conn.execute("UPDATE requests SET status = 'open', updated_at = ? WHERE id = ?", (stamp(now), request_id))

    def add_vote(self, request_id: str, vote: Vote) -> bool:
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO votes (request_id, stage, person, verb, version, comment, at) VALUES (?,?,?,?,?,?,?)",
            (request_id, vote.stage, vote.person, vote.verb.value, vote.version, vote.comment, stamp(vote.at)),
        )
        return cursor.rowcount == 1

    def votes(self, request_id: str, stage: int | None = None) -> list[Vote]:
        sql = "SELECT stage, person, verb, version, comment, at FROM votes WHERE request_id = ?"
        args: tuple = (request_id,)
        if stage is not None:
            sql += " AND stage = ?"
            args += (stage,)
        rows = self.conn.execute(sql + " ORDER BY at", args).fetchall()
        return [
            Vote(stage=r[0], person=r[1], verb=r[2], version=r[3], comment=r[4], at=datetime.fromisoformat(r[5])) for r in rows
        ]

    # ---- cards as posted

    def save_card(self, posted: PostedCard, now: datetime) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO cards (request_id, stage, platform, kind, address, person, conversation, message_id, posted_at)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (
                posted.request_id,
                posted.stage,
                posted.target.platform,
                posted.target.kind,
                posted.target.address,
                posted.target.person,
                posted.conversation,
                posted.message_id,
                stamp(now),
            ),
        )

    def cards(self, request_id: str) -> list[PostedCard]:
        rows = self.conn.execute(
            "SELECT stage, platform, kind, address, person, conversation, message_id FROM cards WHERE request_id = ? ORDER BY id",
            (request_id,),
        ).fetchall()
        return [
            PostedCard(
                request_id=request_id,
                stage=r[0],
                target=Target(platform=r[1], kind=r[2], address=r[3], person=r[4]),
                conversation=r[5],
                message_id=r[6],
            )
            for r in rows
        ]

    def card_posted(self, request_id: str, stage: int, platform: str, address: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM cards WHERE request_id = ? AND stage = ? AND platform = ? AND address = ?",
            (request_id, stage, platform, address),
        ).fetchone()
        return row is not None

    def request_for_message(self, conversation: str, message_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT request_id FROM cards WHERE conversation = ? AND message_id = ?", (conversation, message_id)
        ).fetchone()
        return row[0] if row else None

    # ---- conversations (ConversationDirectory)

    async def save_conversation(self, platform: Platform, key: str, reference: dict) -> None:
        self.conn.execute(
            "INSERT INTO conversations (platform, key, reference, updated_at) VALUES (?,?,?,?)"
            " ON CONFLICT (platform, key) DO UPDATE SET reference = excluded.reference, updated_at = excluded.updated_at",
            (platform, key, json.dumps(reference, sort_keys=True), stamp(self.clock.now())),
        )

    async def find_conversation(self, platform: Platform, key: str) -> dict | None:
        row = self.conn.execute("SELECT reference FROM conversations WHERE platform = ? AND key = ?", (platform, key)).fetchone()
        return json.loads(row[0]) if row else None

    # ---- the log

    def log(self, request_id: str | None, event: str, actor: str, body: dict) -> decision_log.LogEntry:
        with self.transaction() as conn:
            return decision_log.append(conn, self.clock.now(), request_id, event, actor, body)

    def log_many(self, facts: Sequence[tuple[str | None, str, str, dict]]) -> list[decision_log.LogEntry]:
        """log() for (request id, event, actor, body) entries in order: one head read and one insert for them all."""
        if not facts:
            return []
        with self.transaction() as conn:
            return decision_log.append_many(conn, self.clock.now(), facts)

    def narrative(self, request_id: str) -> list[decision_log.LogEntry]:
        return list(decision_log.entries(self.conn, request_id))
