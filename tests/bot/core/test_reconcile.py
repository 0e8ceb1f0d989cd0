"""Reconciliation against the fake Odoo over HTTP: what a poll stores, how its cursor moves, and when it runs."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from handoff.bot.core.context import Core
from handoff.bot.core.reconcile import Reconciler
from handoff.bot.core.retry import Backoff
from handoff.bot.fakes.odoo import FakeOdoo
from handoff.connectors.odoo import OdooConnector, OdooSettings, parse_webhook
from handoff.state import cursor_store


@pytest.fixture
async def odoo(aiohttp_server, clock):
    fake = FakeOdoo(clock=clock.now)
    server = await aiohttp_server(fake.app)
    settings = OdooSettings(url=str(server.make_url("")).rstrip("/"), database=fake.database, login=fake.api_login,
                            api_key=fake.api_key, webhook_secret="s")
    async with aiohttp.ClientSession() as session:
        yield fake, settings, OdooConnector(settings, session, backoff=Backoff(attempts=1))


@pytest.fixture
def reconciler(odoo, core_for):
    return Reconciler(core_for(odoo[2]), every=timedelta(minutes=5))


@pytest.fixture
def core_for(fresh_store, clock, core):
    def make(connector) -> Core:
        return Core(store=fresh_store, routing=core.routing, connectors={"odoo": connector}, clock=clock)

    return make


def inbox_keys(store, clock) -> set[str]:
    return {item.event.dedup_key for item in store.due_events(clock.now() + timedelta(days=1), limit=100)}


async def test_a_poll_stores_waiting_and_decided_orders_under_the_webhooks_dedup_key(odoo, reconciler, clock):
    fake, settings, _ = odoo
    waiting = fake.add_purchase_order(name="P00042", lines=[("Bolts", 10, 2.0)])
    fake.add_purchase_order(name="P00043", state="draft", lines=[("Nuts", 1, 1.0)])
    decided = fake.add_purchase_order(name="P00031", state="purchase", lines=[("Gloves", 1, 5.0)])
    store = reconciler.core.store

    assert await reconciler.maybe_tick() == 0, "the first poll waits one interval"
    clock.advance(minutes=5)
    assert await reconciler.maybe_tick() == 2
    webhook = parse_webhook(fake.webhook_body(waiting), settings, clock.now())
    assert inbox_keys(store, clock) == {webhook.dedup_key, parse_webhook(fake.webhook_body(decided), settings).dedup_key}
    assert store.accept_event(webhook)[1] is False, "the webhook of a polled change is a duplicate"
    assert cursor_store.get(store.conn, "odoo") == fake.db.records["purchase.order"][decided]["write_date"]

    clock.advance(minutes=1)
    assert await reconciler.maybe_tick() == 0, "not due yet"
    clock.advance(minutes=4)
    assert await reconciler.maybe_tick() == 0, "nothing changed since the cursor"


async def test_an_unreachable_erp_keeps_the_cursor_so_the_next_poll_catches_up(odoo, reconciler, clock):
    fake, _, _ = odoo
    order = fake.add_purchase_order(name="P00042", lines=[("Bolts", 10, 2.0)])
    assert await reconciler.tick() == 1
    cursor = cursor_store.get(reconciler.core.store.conn, "odoo")

    clock.advance(minutes=5)
    fake.set_field("purchase.order", order, state="purchase")
    fake.fail_next(1, status=503)
    assert await reconciler.tick() == 0
    assert cursor_store.get(reconciler.core.store.conn, "odoo") == cursor
    assert await reconciler.tick() == 1, "the change made while Odoo was down"
    assert cursor_store.get(reconciler.core.store.conn, "odoo") > cursor


async def test_a_first_poll_looks_back_one_day_not_through_all_history(odoo, reconciler, clock):
    fake, _, _ = odoo
    fake.add_purchase_order(name="P00001", state="purchase", lines=[("Old", 1, 1.0)])
    clock.advance(days=2)
    fake.add_purchase_order(name="P00042", lines=[("Bolts", 10, 2.0)])
    assert await reconciler.tick() == 1
