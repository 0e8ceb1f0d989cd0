"""Dataverse change tracking: which mapped rows changed since the last poll, as events for the reconciler.

Protocol: MicrosoftDocs/powerapps-docs `developer/data-platform/use-change-tracking-synchronize-data-external-systems.md`
(a collection GET with `Prefer: odata.track-changes` answers the rows and an `@odata.deltaLink` with `$deltatoken`; a GET
of that link answers what changed since, deletes as `$deletedEntity` entries, and the next delta link; $filter, $orderby,
$expand and $top are refused; changes are kept for ExpireChangeTrackingInDays, 7 by default, and an older token is an
error) and `webapi/query/page-results.md` (`Prefer: odata.maxpagesize`, `@odata.nextLink`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from yarl import URL

from handoff.bot.core.errors import ErpRefused
from handoff.bot.core.models import RecordRef, SourceEvent
from handoff.bot.core.reconcile import CursorExpired

from .dataverse_settings import TableMapping
from .dataverse_webapi import API_PATH, WebApi

log = logging.getLogger(__name__)

# Odoo's poll looks back as far on its first run: older changes were webhooked, or are moot by now.
FIRST_POLL_LOOKBACK = timedelta(days=1)
TRACK_CHANGES = "odata.track-changes"
# ChangeTrackingNotEnabledForEntity, "Entity {0} isn't enabled for change tracking." (reference/web-service-error-codes.md)
NOT_TRACKED = "0x80072491"
# ExpiredVersionStamp, "Version stamp associated with the client has expired. Please perform a full sync." (same page).
# [UNVERIFIED] the HTTP status it comes with: the docs give the code and message only; any refusal carrying it counts.
EXPIRED = "0x80044352"
# A table's place in the cursor while it re-syncs after an expired token: read whole, and only rows modified since the
# moment after the "@" become events ("resync" alone, as stored before that moment was kept: every row).
RESYNC = "resync"


async def changed_since(api: WebApi, tables: Mapping[str, TableMapping], cursor: str | None, now: datetime,
                        page_size: int = 500) -> tuple[list[SourceEvent], str]:
    """Rows waiting for approval or decided that changed in each mapped table since `cursor`, and the next cursor.

    The cursor is JSON, one delta link per table. A table without a link (the first poll, or newly mapped) is read
    whole, and only rows modified within FIRST_POLL_LOOKBACK become events; a table marked RESYNC is read whole too, and
    only rows modified since its mark become events ($filter is refused with track-changes, so the rows are filtered
    here). An expired delta link raises CursorExpired with the cursor to start again from.
    """
    links, events, next_links = _links(cursor), [], {}
    for name, table in tables.items():
        delta, since = _window(links.get(name), now)
        try:
            rows, next_links[name] = await _read(api, table, delta, page_size)
        except ErpRefused as error:
            if EXPIRED in str(error) and delta:
                log.warning("dataverse.delta_expired", extra={"table": name, "code": EXPIRED})
                raise CursorExpired(
                    "Dataverse change tracking token expired; re-syncing from a full read. Handoff had not polled the "
                    f"{name} table for longer than Dataverse keeps changes (ExpireChangeTrackingInDays, 7 days unless "
                    "changed; error " + EXPIRED + "). Requests already carded are not carded again. If this repeats, "
                    "keep Handoff running, or raise ExpireChangeTrackingInDays on the organization.",
                    restart=lambda resync_since: json.dumps({**links, name: _resync_mark(resync_since)}, sort_keys=True),
                ) from error
            if NOT_TRACKED not in str(error):
                raise
            raise ErpRefused(
                f"Dataverse does not track changes to the {name} table ({NOT_TRACKED}), so Handoff cannot poll it for "
                "requests a webhook missed. Enable Track changes on the table (Power Apps > Tables > "
                f"{name} > Properties > Advanced options > Track changes); the next poll picks it up."
            ) from error
        events += [event for row in rows if (event := _event(name, table, row, now, since))]
    return events, json.dumps(next_links, sort_keys=True)


async def _read(api: WebApi, table: TableMapping, link: str | None, page_size: int) -> tuple[list[dict], str]:
    """Every page of one change-tracking read, and the delta link its last page ends with."""
    # A next link is asked with the same preferences as the first page; the delta link comes only with the last one,
    # so the cursor moves once every page is in.
    prefer = f"{TRACK_CHANGES},odata.maxpagesize={page_size}"
    columns = [table.id_column, table.reference_column, table.status_column, table.modified_column, "versionnumber"]
    if link:
        page = await api.get(_relative(link), {}, prefer=prefer)
    else:
        page = await api.get(table.entity_set, {"$select": ",".join(columns)}, prefer=prefer)
    rows = list(page.get("value", []))
    while "@odata.nextLink" in page:
        page = await api.get(_relative(page["@odata.nextLink"]), {}, prefer=prefer)
        rows += page.get("value", [])
    # The docs speak of "an empty JSON response" when nothing changed: then the link held is still the one to ask.
    return rows, page.get("@odata.deltaLink") or link or ""


def _relative(link: str) -> str:
    """The part of a delta or next link after the API root, as Dataverse encoded it (the token is opaque).

    Only the path and query are kept: the bearer token goes to the configured environment, whatever host a link names.
    """
    raw = URL(link, encoded=True).raw_path_qs
    if not raw.startswith(f"{API_PATH}/"):
        raise ErpRefused(f"Dataverse sent the link {link[:200]}, which is not under its Web API {API_PATH}; "
                         "check that HANDOFF_DATAVERSE__URL is the environment's URL.")
    return raw[len(API_PATH) + 1:]


def _window(link: str | None, now: datetime) -> tuple[str | None, str | None]:
    """The delta link to ask (None: read the table whole) and the oldest `modifiedon` that is still news (None: any)."""
    if link is None:
        return None, _stamp(now - FIRST_POLL_LOOKBACK)
    if link == RESYNC or link.startswith(f"{RESYNC}@"):
        return None, link[len(RESYNC) + 1:] or None
    return link, None


def _resync_mark(since: datetime | None) -> str:
    return f"{RESYNC}@{_stamp(since)}" if since else RESYNC


def _stamp(moment: datetime) -> str:
    # The Web API writes DateTime columns as UTC "2026-11-24T10:42:00Z", so the strings compare as the moments do.
    return f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


def _event(name: str, table: TableMapping, row: dict, now: datetime, since: str | None) -> SourceEvent | None:
    if "@removed" in row or row.get(table.id_column) is None:
        # A delete: Dataverse answers `$deletedEntity` entries ({"id", "reason": "deleted"}), OData 4.01 `@removed` ones.
        # A deleted request has nothing left to decide; an open card for it is closed by the next re-read's 404.
        log.info("dataverse.row_deleted", extra={"table": name, "id": row.get("id")})
        return None
    status = row.get(table.status_column)
    if status not in {*table.awaiting_values, table.approved_value, table.rejected_value}:
        return None
    modified = row.get(table.modified_column)
    if since and not (isinstance(modified, str) and modified >= since):
        return None
    record_id = str(uuid.UUID(str(row[table.id_column])))  # the webhook's form, so both name the same record
    # versionnumber is the row's rowversion: a repeated poll of the same change carries the same one and dedups.
    # A webhook keys its event by OperationId instead, so a change both webhooked and polled is ingested twice; that
    # is harmless, because ingest re-reads the record and an open request for it absorbs the second as a duplicate.
    return SourceEvent(
        ref=RecordRef(source="dataverse", model=name, record_id=record_id),
        dedup_key=f"dataverse:{name}:{record_id}:versionnumber:{row.get('versionnumber')}",
        received_at=now,
        hint={"trigger": "poll", table.status_column: status, table.reference_column: row.get(table.reference_column),
              table.modified_column: modified},
    )


def _links(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        links = json.loads(cursor)
    except ValueError:
        links = None
    if not isinstance(links, dict):
        # Not a cursor this module wrote: start over with a full read and the first poll's look-back.
        log.warning("dataverse.cursor_unreadable", extra={"cursor": cursor[:80]})
        return {}
    return {str(name): link for name, link in links.items() if isinstance(link, str) and link}
