"""PostgreSQL keeps the store's promises when several replicas share it: no doubles, one chain, one leader."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta

import pytest

from handoff.bot.config import Settings
from handoff.bot.core.errors import ConfigError
from handoff.bot.core.models import RecordRef, SourceEvent
from handoff.bot.fakes.postgres import configured_database, reachable, scratch_schema
from handoff.bot.fakes.waiting import wait_until
from handoff.state import decision_log, outbox
from handoff.state.pg import translate
from handoff.state.store import Store

SERVER = configured_database() or "postgresql://postgres@127.0.0.1:5432/test"
UNREACHABLE = reachable(SERVER)
needs_pg = pytest.mark.skipif(UNREACHABLE is not None, reason=UNREACHABLE or "")


@pytest.fixture
def url():
    with scratch_schema(SERVER) as scratch:
        yield scratch


@pytest.fixture
def open_store(url, clock):
    """Stores on the same scratch schema, each with its own connection, as replicas would have."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(Store(url, clock))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


def test_sqlite_statements_are_translated_for_postgresql():
    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE '%?%' AND d = ?") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE '%%?%%' AND d = %s", None)
    assert translate("INSERT OR IGNORE INTO votes (a, b) VALUES (?,?)") == (
        "INSERT INTO votes (a, b) VALUES (%s,%s) ON CONFLICT DO NOTHING", "votes")
    assert translate("BEGIN IMMEDIATE") == ("BEGIN", None)


def test_a_database_url_selects_postgresql_and_a_path_stays_a_file():
    assert Settings(database="postgresql://handoff@db:5432/handoff").database == "postgresql://handoff@db:5432/handoff"
    assert str(Settings(database="/var/lib/handoff/handoff.db").database) == "/var/lib/handoff/handoff.db"


@needs_pg
def test_an_unreachable_server_is_named_without_its_password(clock):
    with pytest.raises(ConfigError, match="Could not open the PostgreSQL database postgresql://handoff@127.0.0.1:1/x") as caught:
        Store("postgresql://handoff:hunter2@127.0.0.1:1/x", clock)
    assert "hunter2" not in str(caught.value)


@needs_pg
def test_both_backends_migrate_to_the_same_tables_and_columns(open_store, clock):
    def columns(conn, sql: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for table, column in conn.execute(sql).fetchall():
            found.setdefault(table, set()).add(column)
        return found

    lite = Store(":memory:", clock)
    on_sqlite = columns(lite.conn, "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'")
    lite.close()
    on_pg = columns(open_store().conn, "SELECT table_name, column_name FROM information_schema.columns"
                                       " WHERE table_schema = current_schema() AND table_name != 'schema_version'")
    assert on_pg == on_sqlite


@needs_pg
def test_a_second_replica_starting_on_a_migrated_database_keeps_its_data(open_store, clock):
    event = SourceEvent(ref=RecordRef(source="odoo", model="purchase.order", record_id="42"), dedup_key="odoo:42:a",
                        received_at=clock.now(), hint={})
    first_id, new = open_store().accept_event(event)
    again_id, again_new = open_store().accept_event(event)
    assert new and not again_new and first_id == again_id


@needs_pg
def test_the_log_refuses_edits_on_postgresql_too(open_store):
    store = open_store()
    store.log(None, "RequestReceived", "odoo", {"n": 1})
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE decision_log SET actor = 'mallory'")


@needs_pg
def test_two_replicas_claim_different_outbox_items_without_waiting_on_each_other(open_store, clock):
    one, two = open_store(), open_store()
    for key in ("a", "b"):
        outbox.enqueue(one.conn, clock.now(), "notify", {"text": key}, key, None)
    # Were the claim to wait for the other replica's row lock, this turns the hang into an error.
    two.conn.execute("SET lock_timeout = '2s'")
    with one.transaction() as conn:
        mine = outbox.claim_due(conn, clock.now(), 1, timedelta(minutes=2))
        with two.transaction() as other:
            theirs = outbox.claim_due(other, clock.now(), 10, timedelta(minutes=2))
    assert [i.idempotency_key for i in mine] == ["a"]
    assert [i.idempotency_key for i in theirs] == ["b"]


@needs_pg
def test_concurrent_appends_from_two_replicas_keep_one_unbroken_chain(open_store):
    replicas = [open_store(), open_store()]

    def append(store: Store, who: str) -> None:
        for n in range(40):
            store.log(None, "DecisionRecorded", who, {"n": n})

    threads = [threading.Thread(target=append, args=(store, f"replica{i}")) for i, store in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = decision_log.verify(replicas[0].conn)
    assert result.problems == () and result.checked == 80


_HOLDER = """
import sys, time
from handoff.bot.core.ports import SystemClock
from handoff.state.store import Store
store = Store(sys.argv[1], SystemClock())
print(store.try_lead("scheduler"), flush=True)
sys.stdin.read()
"""


@needs_pg
async def test_the_lead_passes_to_another_replica_when_the_leader_dies(open_store, url):
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        replica = open_store()
        assert not replica.try_lead("scheduler")
        holder.kill()
        holder.wait()
        await wait_until(lambda: replica.try_lead("scheduler"), what="the surviving replica to take the lead")
        assert replica.try_lead("scheduler"), "a leader keeps its lead"
    finally:
        holder.kill()
        holder.wait()
