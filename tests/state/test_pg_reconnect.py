"""The PostgreSQL store outlives its connection: terminated backends, a server that goes away and comes back."""

from __future__ import annotations

import logging
import uuid

import pytest
from pg_server import SERVER, requires_server

from handoff.bot.core.errors import StoreUnavailable
from handoff.bot.core.models import RecordRef, SourceEvent
from handoff.bot.fakes.postgres import (
    scratch_schema,
    terminate_connections,
    with_application_name,
)
from handoff.bot.fakes.tcp_proxy import TcpProxy
from handoff.bot.fakes.waiting import wait_until
from handoff.state.store import Store

pytestmark = requires_server
PASSWORD = "hunter2-never-logged"


@pytest.fixture
def url():
    """A scratch schema, reached with a password the server ignores (trust) but the logs must never show."""
    with scratch_schema(SERVER.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)) as scratch:
        yield scratch


@pytest.fixture
def named(url):
    """Open stores under one application name each; returns (store, name) so a test can terminate its connection."""
    opened: list[Store] = []

    def open_one(clock, via: str | None = None) -> tuple[Store, str]:
        name = "handoff-test-" + uuid.uuid4().hex[:8]
        opened.append(Store(with_application_name(via or url, name), clock))
        return opened[-1], name

    yield open_one
    for store in opened:
        store.close()


def event(n: int, clock) -> SourceEvent:
    return SourceEvent(ref=RecordRef(source="odoo", model="purchase.order", record_id=str(n)), dedup_key=f"odoo:{n}:a",
                       received_at=clock.now(), hint={})


def pending(store: Store) -> list[str]:
    return [row[0] for row in store.conn.execute("SELECT dedup_key FROM inbox ORDER BY id").fetchall()]


def logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("store.")]


def test_a_statement_after_the_backend_was_terminated_runs_on_a_new_connection(named, clock, url, caplog):
    caplog.set_level(logging.INFO)
    store, name = named(clock)
    store.accept_event(event(1, clock))
    assert terminate_connections(SERVER, name) == 1

    assert store.accept_event(event(2, clock))[1], "the webhook after the restart is stored, not refused"
    assert pending(store) == ["odoo:1:a", "odoo:2:a"]
    assert logged(caplog) == ["store.connection_lost", "store.reconnected"]
    lost = next(r for r in caplog.records if r.getMessage() == "store.connection_lost")
    assert lost.error == "terminating connection due to administrator command" and not lost.in_transaction
    assert all(PASSWORD not in str(vars(record)) for record in caplog.records)


def test_a_transaction_cut_off_by_a_lost_connection_fails_whole_and_the_next_one_works(named, clock):
    store, name = named(clock)
    with pytest.raises(StoreUnavailable, match="the transaction was rolled back") as caught:
        with store.transaction():
            store.accept_event(event(1, clock))
            terminate_connections(SERVER, name)
            store.accept_event(event(2, clock))
    assert PASSWORD not in str(caught.value)

    assert pending(store) == [], "nothing of the lost transaction was applied, not even its first half"
    with store.transaction():
        store.accept_event(event(1, clock))
        store.accept_event(event(2, clock))
    assert pending(store) == ["odoo:1:a", "odoo:2:a"]


def test_the_rest_of_a_lost_transaction_never_runs_on_the_new_connection(named, clock):
    store, name = named(clock)
    with pytest.raises(StoreUnavailable):
        with store.transaction():
            terminate_connections(SERVER, name)
            try:
                store.accept_event(event(1, clock))
            except StoreUnavailable:
                pass  # a caller that swallows the failure and carries on
            store.accept_event(event(2, clock))
    assert pending(store) == []


async def test_a_leader_whose_connection_was_lost_must_win_the_lead_again(named, clock):
    leader, name = named(clock)
    other, _ = named(clock)
    assert leader.try_lead("scheduler") and not other.try_lead("scheduler")

    terminate_connections(SERVER, name)
    # The advisory lock died with the leader's session: another replica may take it at once.
    await wait_until(lambda: other.try_lead("scheduler"), what="the other replica to take the freed lead")
    assert not leader.try_lead("scheduler"), "the reconnected process no longer believes it leads"

    other.close()
    await wait_until(lambda: leader.try_lead("scheduler"), what="the reconnected process to win the lead back")


def test_while_the_server_is_away_statements_fail_fast_and_resume_once_it_is_back(named, clock, url, caplog):
    caplog.set_level(logging.INFO)
    with TcpProxy.in_front_of(url) as proxy:
        store, _ = named(clock, via=proxy.route(url))
        store.accept_event(event(1, clock))

        proxy.down()
        with pytest.raises(StoreUnavailable, match="reconnecting failed") as caught:
            store.accept_event(event(2, clock))
        assert caught.value.retry_after > 0
        with pytest.raises(StoreUnavailable, match="the last attempt to reopen it failed"):
            store.accept_event(event(2, clock))
        assert logged(caplog).count("store.reconnect_failed") == 1, "no new attempt before the backoff allows one"

        proxy.up()
        clock.advance(seconds=caught.value.retry_after)
        assert store.accept_event(event(2, clock))[1]
        assert pending(store) == ["odoo:1:a", "odoo:2:a"]
        assert logged(caplog) == ["store.connection_lost", "store.reconnect_failed", "store.reconnected"]
    assert all(PASSWORD not in str(vars(record)) for record in caplog.records)


def test_handoffs_in_two_schemas_of_one_database_each_have_their_own_leader(named, clock):
    # Advisory locks span the database; the lead must not, or one deployment (or test run) starves another's scheduler.
    here, _ = named(clock)
    with scratch_schema(SERVER) as elsewhere:
        there = Store(elsewhere, clock)
        try:
            assert here.try_lead("scheduler") and there.try_lead("scheduler")
        finally:
            there.close()


def test_a_commit_that_never_reached_the_server_fails_and_leaves_the_store_usable(named, clock, url):
    with TcpProxy.in_front_of(url) as proxy:
        store, _ = named(clock, via=proxy.route(url))
        with pytest.raises(StoreUnavailable, match="lost at COMMIT, so whether it was applied is unknown"):
            with store.transaction():
                store.accept_event(event(1, clock))
                proxy.down()
        proxy.up()
        assert pending(store) == [], "the server never saw the COMMIT, so it rolled the transaction back"
        assert store.accept_event(event(2, clock))[1]
        assert pending(store) == ["odoo:2:a"]
