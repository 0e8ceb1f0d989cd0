"""The outbox counts claims, so a delivery can tell a first try from one after a claim that never finished."""

from __future__ import annotations

from datetime import timedelta

from handoff.state import outbox

LEASE = timedelta(seconds=30)


def queue_one(store, clock) -> None:
    with store.transaction() as conn:
        outbox.enqueue(conn, clock.now(), "post_card", {"stage": 0}, "post:r1:0", "r1")


def claim(store, clock) -> list[outbox.OutboxItem]:
    with store.transaction() as conn:
        return outbox.claim_due(conn, clock.now(), 10, LEASE)


def test_a_claim_whose_holder_died_is_counted_when_the_lease_runs_out(fresh_store, clock):
    queue_one(fresh_store, clock)
    [first] = claim(fresh_store, clock)
    assert first.claims == 1
    assert claim(fresh_store, clock) == [], "leased to the first claimant"

    clock.advance(seconds=31)  # the first claimant never completed: its lease ran out
    [again] = claim(fresh_store, clock)
    assert (again.claims, again.attempts) == (2, 0)
    assert again.created_at == first.created_at
    assert [i.claims for i in outbox.items(fresh_store.conn)] == [2]


def test_a_postponed_claim_is_given_back(fresh_store, clock):
    queue_one(fresh_store, clock)
    [item] = claim(fresh_store, clock)
    outbox.postpone(fresh_store.conn, item.id, clock.now())  # held for its send slot: nothing was sent

    [next_claim] = claim(fresh_store, clock)
    assert next_claim.claims == 1
