"""Throwaway PostgreSQL schemas for tests: HANDOFF_TEST_DATABASE names the server, each test gets its own schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

ENV = "HANDOFF_TEST_DATABASE"


def test_database() -> str | None:
    """The PostgreSQL URL tests should run against instead of SQLite, if one is configured."""
    return os.environ.get(ENV) or None


def reachable(url: str) -> str | None:
    """None when the server answers, else why not (for a skip reason)."""
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as error:
        return f"PostgreSQL at {url} is not reachable ({str(error).strip().splitlines()[0]}); set {ENV} to a server that is"
    return None


def with_search_path(url: str, schema: str) -> str:
    """The URL with libpq's `options` setting the search_path, so every connection of the store lands in `schema`."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"] + [("options", f"-csearch_path={schema}")]
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextmanager
def scratch_schema(url: str) -> Iterator[str]:
    """A fresh, empty schema for the duration; yields a URL pointing at it, drops it afterwards."""
    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def database_for_test(path: str | Path) -> Iterator[str | Path]:
    """`path` as given, or a scratch PostgreSQL schema when HANDOFF_TEST_DATABASE is set."""
    url = test_database()
    if url is None:
        yield path
        return
    with scratch_schema(url) as scratch:
        yield scratch
