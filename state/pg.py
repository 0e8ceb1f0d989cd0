"""PostgreSQL behind the sqlite3-shaped connection the state modules use: same SQL, `?` placeholders, tuple rows."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import urlsplit

import psycopg

from handoff.bot.core.errors import ConfigError

from .pg_migrations import migrate

SCHEMES = ("postgresql://", "postgres://")

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


class Connection:
    """A psycopg connection in autocommit mode, so the Store's own BEGIN/COMMIT delimit transactions as with sqlite3."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw
        self._id_tables: frozenset[str] = frozenset()

    def execute(self, sql: str, params: Sequence = ()) -> Cursor:
        if sql.lstrip().upper().startswith("PRAGMA"):
            return Cursor(None)  # journal mode, foreign keys: PostgreSQL has them on by nature
        text, table = translate(sql)
        returning = table in self._id_tables and " RETURNING " not in text.upper()
        if returning:
            # sqlite3 hands back lastrowid; PostgreSQL returns the generated id only when asked.
            text += " RETURNING id"
        raw = self._run(lambda cur: cur.execute(text, tuple(params)))
        lastrowid = None
        if returning and raw.rowcount == 1:
            lastrowid = raw.fetchone()[0]
        return Cursor(raw, lastrowid)

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> Cursor:
        text, _ = translate(sql)
        return Cursor(self._run(lambda cur: cur.executemany(text, [tuple(r) for r in rows])))

    def executescript(self, script: str) -> None:
        """Several statements, no parameters, exactly as written (PostgreSQL DDL)."""
        self._run(lambda cur: cur.execute(script))

    def xact_lock(self, name: str) -> None:
        """Hold an advisory lock until the current transaction ends, serializing writers of one resource."""
        self.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(name),))

    def try_session_lock(self, name: str) -> bool:
        """Take an advisory lock held until this connection closes (or its process dies), without waiting."""
        return bool(self.execute("SELECT pg_try_advisory_lock(?)", (lock_key(name),)).fetchone()[0])

    def release_session_lock(self, name: str) -> None:
        self.execute("SELECT pg_advisory_unlock(?)", (lock_key(name),))

    def refresh_tables(self) -> None:
        """Remember which tables have a generated `id`, so inserts into them report lastrowid."""
        rows = self.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'"
        ).fetchall()
        self._id_tables = frozenset(r[0] for r in rows)

    def close(self) -> None:
        self.raw.close()

    def _run(self, action) -> psycopg.Cursor:
        cursor = self.raw.cursor()
        try:
            action(cursor)
        except psycopg.IntegrityError as error:
            # Callers and tests written against sqlite3 catch its IntegrityError; a violated constraint is the same fact.
            raise sqlite3.IntegrityError(str(error).strip()) from error
        return cursor


def _open(url: str) -> Connection:
    try:
        return Connection(psycopg.connect(url, autocommit=True, connect_timeout=10))
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


def connect(url: str) -> Connection:
    """Open, migrate and return a connection; a bad URL or unreachable server is a ConfigError naming the fix."""
    conn = _open(url)
    migrate(conn)
    conn.refresh_tables()
    return conn
