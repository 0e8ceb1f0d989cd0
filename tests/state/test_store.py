"""The store keeps webhooks once, and the outbox delivers each effect once."""

from __future__ import annotations

from datetime import timedelta

from handoff.bot.core.models import RecordRef, SourceEvent
from handoff.state import outbox


def _event(clock, key: str = "odoo:purchase.order:42:2026-11-23 10:00:00") -> SourceEvent:
    return SourceEvent(ref=RecordRef(source="odoo", model="purchase.order", record_id="42"), dedup_key=key,
                       received_at=clock.now(), hint={"state": "to approve"})


def test_a_redelivered_webhook_is_stored_once(fresh_store, clock):
    first_id, first_new = fresh_store.accept_event(_event(clock))
    again_id, again_new = fresh_store.accept_event(_event(clock))
    assert (first_new, again_new) == (True, False)
    assert first_id == again_id
    assert fresh_store.inbox_depth() == {"pending": 1}


def test_a_different_change_of_the_same_record_is_a_new_event(fresh_store, clock):
    fresh_store.accept_event(_event(clock))
    _, new = fresh_store.accept_event(_event(clock, key="odoo:purchase.order:42:2026-11-23 11:00:00"))
    assert new


def test_outbox_claims_lease_items_so_a_crash_retries_them(fresh_store, clock):
    with fresh_store.transaction() as conn:
        outbox.enqueue(conn, clock.now(), "notify", {"text": "hi"}, "k1", None)
        assert not outbox.enqueue(conn, clock.now(), "notify", {"text": "hi"}, "k1", None)
    claimed = outbox.claim_due(fresh_store.conn, clock.now(), 10, timedelta(minutes=2))
    assert [i.idempotency_key for i in claimed] == ["k1"]
    assert outbox.claim_due(fresh_store.conn, clock.now(), 10, timedelta(minutes=2)) == []
    clock.advance(minutes=3)
    assert [i.idempotency_key for i in outbox.claim_due(fresh_store.conn, clock.now(), 10, timedelta(minutes=2))] == ["k1"]


def test_dead_letters_can_be_revived_or_dropped(fresh_store, clock):
    outbox.enqueue(fresh_store.conn, clock.now(), "notify", {}, "a", None)
    outbox.enqueue(fresh_store.conn, clock.now(), "notify", {}, "b", None)
    a, b = outbox.items(fresh_store.conn)
    outbox.bury(fresh_store.conn, a.id, "channel_not_found")
    outbox.bury(fresh_store.conn, b.id, "channel_not_found")
    assert outbox.revive(fresh_store.conn, a.id, clock.now())
    assert outbox.drop(fresh_store.conn, b.id, "channel archived")
    assert outbox.depth(fresh_store.conn) == {"pending": 1, "dropped": 1}
