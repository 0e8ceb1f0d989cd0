"""Throwaway PostgreSQL schemas for tests: HANDOFF_TEST_DATABASE names the server, each test gets its own schema."""

from __future__ import annotations

import atexit
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

ENV = "HANDOFF_TEST_DATABASE"


def configured_database() -> str | None:
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
    return _with_parameter(url, "options", f"-csearch_path={schema}")


def with_application_name(url: str, name: str) -> str:
    """The URL with a libpq `application_name`, so a test can find its own connections among everyone's."""
    return _with_parameter(url, "application_name", name)


def terminate_connections(url: str, application_name: str) -> int:
    """pg_terminate_backend for every connection opened under `application_name`, as a server restart ends them all.

    Only those: other tests (and other people's test runs) share the server.
    """
    with psycopg.connect(url, autocommit=True) as admin:
        return admin.execute(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchone()[0]


def _with_parameter(url: str, key: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != key] + [(key, value)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _create(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


def _drop(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def scratch_schema(url: str) -> Iterator[str]:
    """A fresh, empty schema for the duration; yields a URL pointing at it, drops it afterwards."""
    schema = "t_" + uuid.uuid4().hex[:12]
    _create(url, schema)
    try:
        yield with_search_path(url, schema)
    finally:
        _drop(url, schema)


@contextmanager
def database_for_test(path: str | Path) -> Iterator[str | Path]:
    """`path` as given, or a PostgreSQL schema standing in for it when HANDOFF_TEST_DATABASE is set.

    Like the SQLite file it replaces, the schema for one path outlives the store, so a test can restart Handoff on
    the same data; ":memory:" is fresh every time. Schemas left behind are dropped when the test run ends.
    """
    url = configured_database()
    if url is None:
        yield path
    elif str(path) == ":memory:":
        with scratch_schema(url) as scratch:
            yield scratch
    else:
        schema = "t_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        _create(url, schema)
        atexit.register(_drop, url, schema)
        yield with_search_path(url, schema)
