"""The decision log is append-only and its hash chain names any tampering."""

from __future__ import annotations

import sqlite3

import pytest

from handoff.state import decision_log


def _fill(store, n: int = 5) -> None:
    for i in range(n):
        store.log(f"r-{i % 2}", "DecisionRecorded", f"person{i}", {"stage": 0, "verb": "approve", "n": i})


def _tamper(store, sql: str, *args) -> None:
    # An attacker with the file can drop our triggers; verify must still catch the edit.
    table = " ON decision_log" if getattr(store.conn, "dialect", "sqlite") == "postgresql" else ""
    store.conn.execute("DROP TRIGGER decision_log_no_update" + table)
    store.conn.execute("DROP TRIGGER decision_log_no_delete" + table)
    store.conn.execute(sql, args)


def test_an_untouched_log_verifies(fresh_store):
    _fill(fresh_store)
    result = decision_log.verify(fresh_store.conn)
    assert result.ok and result.checked == 5 and result.problems == ()


def test_the_log_refuses_updates_and_deletes_from_inside(fresh_store):
    _fill(fresh_store)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        fresh_store.conn.execute("UPDATE decision_log SET actor = 'mallory' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        fresh_store.conn.execute("DELETE FROM decision_log WHERE seq = 2")


def test_an_edited_entry_is_named(fresh_store):
    _fill(fresh_store)
    _tamper(fresh_store, "UPDATE decision_log SET body = ? WHERE seq = 3", '{"stage":0,"verb":"reject","n":2}')
    result = decision_log.verify(fresh_store.conn)
    assert not result.ok
    assert result.problems == ("entry 3 (DecisionRecorded, request r-0) was edited after it was written",)


def test_a_deleted_entry_is_named(fresh_store):
    _fill(fresh_store)
    _tamper(fresh_store, "DELETE FROM decision_log WHERE seq = 2")
    result = decision_log.verify(fresh_store.conn)
    assert "entry 2 missing: deleted from the log" in result.problems
    assert any("entry 3" in p and "does not follow" in p for p in result.problems)


def test_reordered_entries_are_caught(fresh_store):
    _fill(fresh_store)
    store = fresh_store
    _tamper(store, "UPDATE decision_log SET seq = 100 WHERE seq = 2")
    store.conn.execute("UPDATE decision_log SET seq = 2 WHERE seq = 4")
    store.conn.execute("UPDATE decision_log SET seq = 4 WHERE seq = 100")
    result = decision_log.verify(store.conn)
    assert not result.ok
    assert any(p.startswith("entry 2 ") for p in result.problems)


def test_a_rewritten_tail_with_recomputed_hashes_still_breaks_at_the_edit(fresh_store):
    """Recomputing one entry's hash is not enough: the next entry commits to the old one."""
    _fill(fresh_store)
    store = fresh_store
    row = store.conn.execute("SELECT seq, at, request_id, event, actor, prev_hash FROM decision_log WHERE seq = 2").fetchone()
    body = '{"n":1,"stage":0,"verb":"reject"}'
    forged = decision_log.entry_hash(row[5], row[0], row[1], row[2], row[3], row[4], body)
    _tamper(store, "UPDATE decision_log SET body = ?, hash = ? WHERE seq = 2", body, forged)
    result = decision_log.verify(store.conn)
    assert result.problems == ("entry 3 (DecisionRecorded) does not follow the entry before it: an entry was deleted, inserted or reordered",)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_holds_every_entry_in_chain_order(fresh_store, fmt):
    _fill(fresh_store, 3)
    text = decision_log.export(fresh_store.conn, fmt)
    lines = text.strip().splitlines()
    assert len(lines) == (3 if fmt == "jsonl" else 4)
    assert "person2" in lines[-1]
