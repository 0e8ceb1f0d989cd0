"""The worker sleeps until the next queued item falls due, so a paced post leaves at its slot rather than a tick later."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handoff.bot.app import WORKER
from handoff.bot.core.effects import Effects
from handoff.bot.core.models import Target
from handoff.bot.fakes.stack import local_stack
from handoff.state import outbox

OPS = Target(platform="slack", kind="channel", address="C0OPS")


@pytest.fixture
async def worker_and_store(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as running:
        await running.settled()
        yield running.app[WORKER], running.store


def queue_due_in(store, clock, seconds: float) -> None:
    with store.transaction() as conn:
        Effects(conn, clock.now()).notify(OPS, "a paced notice")
    [item] = outbox.items(store.conn, "pending")
    with store.transaction() as conn:
        outbox.postpone(conn, item.id, clock.now() + timedelta(seconds=seconds))


async def test_with_nothing_queued_an_idle_round_sleeps_a_whole_tick(worker_and_store):
    worker, _ = worker_and_store
    assert worker.idle_s() == worker.tick_s


async def test_an_item_due_sooner_than_a_tick_shortens_the_sleep_to_its_slot(worker_and_store, clock):
    worker, store = worker_and_store
    queue_due_in(store, clock, 0.3)
    assert worker.idle_s() == pytest.approx(0.3)


async def test_an_item_due_later_than_a_tick_leaves_the_tick_as_it_is(worker_and_store, clock):
    worker, store = worker_and_store
    queue_due_in(store, clock, 30)
    assert worker.idle_s() == worker.tick_s
