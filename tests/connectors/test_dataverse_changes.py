"""Dataverse change tracking against the fake Web API on loopback: first read, delta links, pages, deletes, untracked tables."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from handoff.bot.core.errors import ErpRefused
from handoff.bot.core.reconcile import CursorExpired
from handoff.bot.core.retry import Backoff
from handoff.bot.fakes.stack import serve
from handoff.bot.fakes.stack_dataverse import dataverse_fakes
from handoff.connectors.dataverse import DataverseConnector, MsalTokenProvider

PENDING, APPROVED, DRAFT = 100000001, 100000002, 1


@pytest.fixture
async def dataverse(clock):
    async with dataverse_fakes(serve, clock) as (fake, _, settings, _), aiohttp.ClientSession() as session:
        tokens = MsalTokenProvider(settings, verify=settings.ca_bundle)
        yield fake, DataverseConnector(settings, session, tokens, backoff=Backoff(attempts=1))


def tracked_reads(fake) -> list[tuple[str, dict[str, str]]]:
    """(path and query, headers) of each change-tracking GET of purchase orders."""
    return [(path, headers) for method, path, headers in fake.requests
            if method == "GET" and path.startswith("/api/data/v9.2/purchaseorders?")]


def key(fake, record_id: str) -> str:
    return f"dataverse:purchaseorder:{record_id}:versionnumber:{fake.row('purchaseorder', record_id)['versionnumber']}"


async def test_a_first_poll_reads_the_table_whole_and_keeps_its_delta_link_as_the_cursor(dataverse, clock):
    fake, connector = dataverse
    fake.add_purchase_order("PO-1", "Acme", "10.00", status=APPROVED)  # decided two days ago: moot by now
    clock.advance(days=2)
    waiting = fake.add_purchase_order("PO-2", "Acme", "20.00")
    fake.add_purchase_order("PO-3", "Acme", "30.00", status=DRAFT)
    decided = fake.add_purchase_order("PO-4", "Acme", "40.00", status=APPROVED)

    events, cursor = await connector.changed_since(None, clock.now())

    assert {event.dedup_key for event in events} == {key(fake, waiting), key(fake, decided)}
    assert {event.hint["ordernumber"] for event in events} == {"PO-2", "PO-4"}
    assert all(event.hint["trigger"] == "poll" for event in events)
    [(path, headers)] = tracked_reads(fake)
    assert headers["Prefer"].startswith("odata.track-changes") and "$filter" not in path
    link = json.loads(cursor)["purchaseorder"]
    assert link.startswith(f"{connector.settings.url}/api/data/v9.2/purchaseorders?$select=")
    assert "$deltatoken" in parse_qs(urlsplit(link).query)


async def test_a_change_is_one_event_and_a_poll_with_nothing_new_is_none(dataverse, clock):
    fake, connector = dataverse
    record_id = fake.add_purchase_order("PO-2", "Acme", "20.00")
    draft = fake.add_purchase_order("PO-3", "Acme", "30.00", status=DRAFT)
    _, cursor = await connector.changed_since(None, clock.now())

    fake.update("purchaseorder", record_id, statuscode=APPROVED)
    fake.update("purchaseorder", draft, totalamount=31.0)  # a draft's edit is nobody's decision
    events, next_cursor = await connector.changed_since(cursor, clock.now())

    assert [event.dedup_key for event in events] == [key(fake, record_id)]
    assert events[0].ref.record_id == record_id and events[0].hint["statuscode"] == APPROVED
    link = urlsplit(json.loads(cursor)["purchaseorder"])
    assert tracked_reads(fake)[-1][0] == f"{link.path}?{link.query}", "the delta link is asked as written, token encoding and all"
    again, _ = await connector.changed_since(cursor, clock.now())
    assert [event.dedup_key for event in again] == [events[0].dedup_key], "the same change polled twice has one key"
    assert await connector.changed_since(next_cursor, clock.now()) == ([], next_cursor)


async def test_every_page_is_read_before_the_cursor_moves(dataverse, clock):
    fake, connector = dataverse
    ids = [fake.add_purchase_order(f"PO-{n}", "Acme", "10.00") for n in range(5)]

    events, cursor = await connector.changed_since(None, clock.now(), page_size=2)

    assert sorted(event.ref.record_id for event in events) == sorted(ids)
    assert len(tracked_reads(fake)) == 3, "three pages of two"
    assert all("odata.maxpagesize=2" in headers["Prefer"] for _, headers in tracked_reads(fake))
    assert "$deltatoken" in json.loads(cursor)["purchaseorder"]


async def test_a_deleted_row_is_no_event(dataverse, clock, caplog):
    fake, connector = dataverse
    gone = fake.add_purchase_order("PO-2", "Acme", "20.00")
    _, cursor = await connector.changed_since(None, clock.now())
    fake.delete("purchaseorder", gone)

    with caplog.at_level("INFO", logger="handoff.connectors.dataverse_changes"):
        events, next_cursor = await connector.changed_since(cursor, clock.now())

    assert events == [] and next_cursor != cursor
    assert [record.id for record in caplog.records if record.message == "dataverse.row_deleted"] == [gone]


async def test_a_table_without_change_tracking_is_refused_with_the_fix(dataverse, clock):
    fake, connector = dataverse
    fake.stop_tracking_changes("purchaseorder")

    with pytest.raises(ErpRefused) as refused:
        await connector.changed_since(None, clock.now())

    assert str(refused.value) == (
        "Dataverse does not track changes to the purchaseorder table (0x80072491), so Handoff cannot poll it for requests "
        "a webhook missed. Enable Track changes on the table (Power Apps > Tables > purchaseorder > Properties > "
        "Advanced options > Track changes); the next poll picks it up."
    )


async def test_a_delta_link_older_than_dataverse_keeps_changes_restarts_as_a_full_read_of_what_changed_since(dataverse, clock):
    fake, connector = dataverse
    long_decided = fake.add_purchase_order("PO-0", "Acme", "5.00", status=APPROVED)
    clock.advance(days=3)  # older than the first poll's look-back: never an event
    seen = fake.add_purchase_order("PO-1", "Acme", "10.00")
    clock.advance(hours=2)
    polled_at = clock.now()
    _, cursor = await connector.changed_since(None, polled_at)
    clock.advance(days=8)  # past ExpireChangeTrackingInDays (7 by default)
    fresh = fake.add_purchase_order("PO-2", "Acme", "20.00")

    with pytest.raises(CursorExpired) as expired:
        await connector.changed_since(cursor, clock.now())

    assert str(expired.value).startswith("Dataverse change tracking token expired; re-syncing from a full read.")
    assert "0x80044352" in str(expired.value)
    events, restarted = await connector.changed_since(expired.value.restart(polled_at - timedelta(hours=1)), clock.now())
    # The re-read is whole (no $filter with track-changes), but rows last modified before the expired cursor are not news.
    assert {event.dedup_key for event in events} == {key(fake, fresh)}
    assert "$deltatoken" in parse_qs(urlsplit(json.loads(restarted)["purchaseorder"]).query)
    path, headers = tracked_reads(fake)[-1]
    assert "$deltatoken" not in path and "$filter" not in path and headers["Prefer"].startswith("odata.track-changes")
    # Not knowing when the expired cursor was stored, every relevant row comes again (the inbox dedups what it saw).
    events, _ = await connector.changed_since(expired.value.restart(None), clock.now())
    assert {event.dedup_key for event in events} == {key(fake, long_decided), key(fake, seen), key(fake, fresh)}