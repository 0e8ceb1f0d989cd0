"""PostgreSQL behind the sqlite3-shaped connection the state modules use: same SQL, `?` placeholders, tuple rows."""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import psycopg

from handoff.bot.core.errors import ConfigError, StoreUnavailable
from handoff.bot.core.retry import Backoff

from .pg_migrations import migrate

log = logging.getLogger(__name__)

SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT_S = 10
# A reconnect runs on the event loop's thread: against a black-holed server it stalls the loop this long (libpq's
# floor is 2 s), at most once per backoff step.
RECONNECT_TIMEOUT_S = 2
# Quick after a blip (a quarter second), then no more than one attempt every 5 s while the server stays away.
RECONNECT_BACKOFF = Backoff(base_delay=0.25, max_delay=5.0)

_INSERT = re.compile(r"^\s*INSERT\s+(OR\s+IGNORE\s+)?INTO\s+(\w+)", re.IGNORECASE)
# A `?` inside a quoted literal or identifier stays; a bare one becomes a placeholder. psycopg reads `%` everywhere,
# quotes included, so every `%` is doubled.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%")


def _token(match: re.Match) -> str:
    token = match.group(0)
    return "%s" if token == "?" else token.replace("%", "%%")


def is_postgres(database: str) -> bool:
    """True when the configured database is a PostgreSQL URL rather than a SQLite path."""
    return database.startswith(SCHEMES)


def redacted(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{parts.username + '@' if parts.username else ''}{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a name, the same in every replica."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


# The store's statements are a few dozen fixed strings, each run many times per event: translated once each.
@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> tuple[str, str | None]:
    """SQLite dialect -> PostgreSQL: placeholders, INSERT OR IGNORE, BEGIN IMMEDIATE. Returns (sql, inserted table)."""
    sql = _TOKENS.sub(_token, sql.strip().rstrip(";"))
    if re.fullmatch(r"BEGIN\s+(IMMEDIATE|EXCLUSIVE|DEFERRED)", sql, re.IGNORECASE):
        return "BEGIN", None
    insert = _INSERT.match(sql)
    if insert is None:
        return sql, None
    if insert.group(1):
        # sqlite's OR IGNORE skips rows that break any unique constraint; ON CONFLICT without a target does the same.
        sql = _INSERT.sub(f"INSERT INTO {insert.group(2)}", sql, count=1) + " ON CONFLICT DO NOTHING"
    return sql, insert.group(2).lower()


class Cursor:
    """The slice of sqlite3.Cursor our code reads: rowcount, lastrowid, fetchone/fetchall, iteration."""

    def __init__(self, raw: psycopg.Cursor | None, lastrowid: int | None = None) -> None:
        self._raw = raw
        self.rowcount = raw.rowcount if raw is not None else -1
        self.lastrowid = lastrowid

    def fetchone(self) -> tuple | None:
        return self._raw.fetchone() if self._raw is not None and self._raw.description else None

    def fetchall(self) -> list[tuple]:
        return self._raw.fetchall() if self._raw is not None and self._raw.description else []

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.fetchall())


class _Lost(Exception):
    """The statement failed because the connection is gone (server restart, terminated backend, network)."""


class Connection:
    """A psycopg connection in autocommit mode, so the Store's own BEGIN/COMMIT delimit transactions as with sqlite3.

    A lost connection is reopened at the next statement, no more often than the backoff allows. A statement that
    fails with the connection outside a transaction runs once more on the new one; inside a transaction the server
    has rolled everything back, so the transaction fails as a whole (StoreUnavailable) and the caller retries it.
    """

    dialect = "postgresql"

    def __init__(self, url: str, now: Callable[[], datetime], backoff: Backoff = RECONNECT_BACKOFF) -> None:
        self.url = url
        self.raw = _dial(url, CONNECT_TIMEOUT_S)
        # Session state (advisory locks, SETs) lives and dies with one server connection; this counts them.
        self.session = 1
        self._now = now
        self._backoff = backoff
        self._id_tables: frozenset[str] = frozenset()
        self._schema: str | None = None
        self._in_transaction = False
        self._transaction_lost = False
        self._closed = False
        self._failures = 0
        self._down_since: datetime | None = None
        self._next_attempt: datetime | None = None

    def execute(self, sql: str, params: Sequence = ()) -> Cursor:
        if sql.lstrip().upper().startswith("PRAGMA"):
            return Cursor(None)  # journal mode, foreign keys: PostgreSQL has them on by nature
        text, table = translate(sql)
        verb = text.split(None, 1)[0].upper() if text else ""
        if self._transaction_lost:
            if verb == "ROLLBACK":
                # The server rolled the transaction back when its connection died: nothing is left to undo.
                self._transaction_lost = False
                return Cursor(None)
            # Run on a new connection in autocommit, the rest of the transaction would be applied without its start.
            raise self._unavailable("its transaction was rolled back when the connection was lost")
        returning = table in self._id_tables and " RETURNING " not in text.upper()
        if returning:
            # sqlite3 hands back lastrowid; PostgreSQL returns the generated id only when asked.
            text += " RETURNING id"
        raw = self._run(lambda cur: cur.execute(text, tuple(params)), verb)
        if verb == "BEGIN":
            self._in_transaction = True
        elif verb in ("COMMIT", "ROLLBACK"):
            self._in_transaction = False
        lastrowid = None
        if returning and raw is not None and raw.rowcount == 1:
            lastrowid = raw.fetchone()[0]
        return Cursor(raw, lastrowid)

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> Cursor:
        text, _ = translate(sql)
        rows = [tuple(r) for r in rows]
        return Cursor(self._run(lambda cur: cur.executemany(text, rows)))

    def executescript(self, script: str) -> None:
        """Several statements, no parameters, exactly as written (PostgreSQL DDL)."""
        self._run(lambda cur: cur.execute(script))

    def xact_lock(self, name: str) -> None:
        """Hold an advisory lock until the current transaction ends, serializing writers of one resource."""
        self.execute("SELECT pg_advisory_xact_lock(?)", (self.advisory_key(name),))

    def try_session_lock(self, name: str) -> bool:
        """Take an advisory lock held until this session ends (see `session`), without waiting."""
        return bool(self.execute("SELECT pg_try_advisory_lock(?)", (self.advisory_key(name),)).fetchone()[0])

    def release_session_lock(self, name: str) -> None:
        self.execute("SELECT pg_advisory_unlock(?)", (self.advisory_key(name),))

    def advisory_key(self, name: str) -> int:
        """The advisory lock key for `name` in this schema."""
        # Advisory locks are database-wide but Handoff's tables live in a schema: two Handoffs (or test runs) in one
        # database, each in its own schema, must not take each other's scheduler lead.
        if self._schema is None:
            self._schema = self.execute("SELECT current_schema()").fetchone()[0] or ""
        return lock_key(f"{self._schema}.{name}")

    def refresh_tables(self) -> None:
        """Remember which tables have a generated `id`, so inserts into them report lastrowid."""
        rows = self.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'"
        ).fetchall()
        self._id_tables = frozenset(r[0] for r in rows)

    def close(self) -> None:
        self._closed = True
        self.raw.close()

    def _run(self, action: Callable[[psycopg.Cursor], object], verb: str = "") -> psycopg.Cursor | None:
        self._reconnect_if_lost()
        try:
            return self._attempt(action)
        except _Lost:
            if self._in_transaction:
                self._in_transaction = False
                if verb == "ROLLBACK":
                    return None
                if verb == "COMMIT":
                    # It ended either way, as if the process had died right there: a case the callers' retries already cover.
                    raise self._unavailable("the connection was lost at COMMIT, so whether it was applied is unknown") from None
                self._transaction_lost = True
                raise self._unavailable("the transaction was rolled back") from None
        # Alone in autocommit, a statement is applied whole or not at all, and a restarted server or terminated backend
        # never applied it: run it once more on a new connection. Only an answer lost on the wire after the statement
        # was applied (a network cut at that instant) makes this a repeat.
        self._reconnect_if_lost()
        try:
            return self._attempt(action)
        except _Lost:
            raise self._unavailable("the connection was lost again right after reconnecting") from None

    def _attempt(self, action: Callable[[psycopg.Cursor], object]) -> psycopg.Cursor:
        try:
            cursor = self.raw.cursor()
            action(cursor)
        except psycopg.IntegrityError as error:
            # Callers and tests written against sqlite3 catch its IntegrityError; a violated constraint is the same fact.
            raise sqlite3.IntegrityError(str(error).strip()) from error
        except psycopg.OperationalError as error:
            if not self.raw.closed:
                raise  # a lock timeout or a cancelled query: the connection is fine
            self._down_since = self._down_since or self._now()
            log.warning("store.connection_lost", extra={"database": redacted(self.url), "in_transaction": self._in_transaction,
                                                        "error": self._reason(error)})
            raise _Lost from error
        return cursor

    def _reconnect_if_lost(self) -> None:
        if not self.raw.closed:
            return
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        now = self._now()
        if self._next_attempt is not None and now < self._next_attempt:
            raise self._unavailable("the connection was lost and the last attempt to reopen it failed")
        try:
            raw = _dial(self.url, RECONNECT_TIMEOUT_S)
        except psycopg.Error as error:
            self._failures += 1
            delay = self._backoff.delay(self._failures)
            self._next_attempt = now + timedelta(seconds=delay)
            log.warning("store.reconnect_failed", extra={"database": redacted(self.url), "attempt": self._failures,
                                                         "retry_in_s": round(delay, 2), "error": self._reason(error)})
            raise self._unavailable(f"reconnecting failed ({self._reason(error)})") from None
        down_s = (now - self._down_since).total_seconds() if self._down_since else 0.0
        self.raw, self.session = raw, self.session + 1
        self._failures, self._next_attempt, self._down_since = 0, None, None
        log.info("store.reconnected", extra={"database": redacted(self.url), "session": self.session, "down_s": round(down_s, 3)})

    def _unavailable(self, reason: str) -> StoreUnavailable:
        retry_after = max(0.0, (self._next_attempt - self._now()).total_seconds()) if self._next_attempt else 0.0
        return StoreUnavailable(
            f"The PostgreSQL database {redacted(self.url)} is unreachable: {reason}. Handoff reconnects by itself and the "
            "work stays queued; if this lasts, check that the server is up and HANDOFF_DATABASE points at it.",
            retry_after=retry_after,
        )

    def _reason(self, error: Exception) -> str:
        """The error's first line, without the URL's password should a driver ever echo it."""
        text = (str(error).strip().splitlines() or [type(error).__name__])[0]
        password = urlsplit(self.url).password
        return text.replace(password, "***") if password else text


def _dial(url: str, timeout_s: int) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, connect_timeout=timeout_s)


def _open(url: str, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> Connection:
    try:
        return Connection(url, now)
    except psycopg.Error as error:
        raise ConfigError(
            f"Could not open the PostgreSQL database {redacted(url)}: {str(error).strip().splitlines()[0]}. "
            "Check HANDOFF_DATABASE (postgresql://user:password@host:5432/dbname) and that the server accepts connections."
        ) from None


def schema_version(url: str) -> int:
    """The schema version the database is at, without migrating it (0 when Handoff never ran on it)."""
    conn = _open(url)
    try:
        found = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
        return conn.execute("SELECT version FROM schema_version").fetchone()[0] if found else 0
    finally:
        conn.close()


def connect(url: str, now: Callable[[], datetime]) -> Connection:
    """Open, migrate and return a connection; a bad URL or unreachable server is a ConfigError naming the fix."""
    conn = _open(url, now)
    migrate(conn)
    conn.refresh_tables()
    return conn
