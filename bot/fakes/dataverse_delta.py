"""Change tracking for the Dataverse fake: `Prefer: odata.track-changes`, delta links, and deleted-entity entries.

Wire behaviour follows MicrosoftDocs/powerapps-docs `developer/data-platform/use-change-tracking-synchronize-data-external-systems.md`:
a collection GET with the preference answers the rows, `Preference-Applied: odata.track-changes` and, on its last page,
an `@odata.deltaLink` carrying `$deltatoken` (`919042!08/22/2017 08:10:44`, URL-encoded); a GET of that link answers
what changed since (`…/$delta` context, `$deletedEntity` entries for deletes) and a new delta link. $filter, $orderby,
$expand and $top are refused. A table without Track changes answers ChangeTrackingNotEnabledForEntity, 0x80072491
"Entity {0} isn't enabled for change tracking." (reference/web-service-error-codes.md). The same page: changes are
kept for the organization's ExpireChangeTrackingInDays (7 by default); a token older than that answers
ExpiredVersionStamp, 0x80044352 "Version stamp associated with the client has expired. Please perform a full sync."
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote

from aiohttp import web

from handoff.bot.core.ports import Clock

from .dataverse_index import LookupIndex
from .dataverse_schema import TABLES, entity_set_of
from .odata import QueryError

TRACK_CHANGES = "odata.track-changes"
UNSUPPORTED = ("$filter", "$orderby", "$expand", "$top")
NOT_TRACKED = "0x80072491"
EXPIRED = "0x80044352"
EXPIRED_MESSAGE = "Version stamp associated with the client has expired. Please perform a full sync."
TOKEN_TIME = "%m/%d/%Y %H:%M:%S"


@dataclass
class ChangeLog:
    """Which tables have Track changes off, and the rows deleted so far (a delta link reports them as removed)."""

    untracked: set[str] = field(default_factory=set)  # entity sets
    deleted: list[tuple[str, str, int]] = field(default_factory=list)  # (entity set, id, versionnumber of the delete)
    keep_for: timedelta = timedelta(days=7)  # Organization.ExpireChangeTrackingInDays


def tracks_changes(request: web.Request) -> bool:
    """A change-tracking read: the first one asks with the preference, later ones GET a delta link."""
    return TRACK_CHANGES in request.headers.get("Prefer", "") or "$deltatoken" in request.query


class ChangeTrackingMixin:
    """Delta reads and deletes, mixed into FakeDataverse; versionnumber is the database-wide change counter."""

    rows: dict[str, dict[str, dict]]
    version: int
    change_log: ChangeLog
    clock: Clock
    _shape: Callable[..., dict]
    _lookups: LookupIndex

    def stop_tracking_changes(self, entity: str) -> None:
        """Turn the table's Track changes setting off, so change-tracking reads of it answer 0x80072491."""
        self.change_log.untracked.add(entity_set_of(entity))

    def delete(self, entity: str, record_id: str) -> None:
        """Delete a row as a Dataverse user would; the next delta read lists it as a `$deletedEntity`."""
        entity_set = entity_set_of(entity)
        del self.rows[entity_set][record_id]
        self._lookups.changed(entity_set)
        self.version += 1
        self.change_log.deleted.append((entity_set, record_id, self.version))

    def _changes(self, request: web.Request, entity_set: str, select: list[str] | None, page_size: int) -> dict:
        """One page of a change-tracking read: rows (and deletes) by versionnumber, then a delta link on the last page."""
        table = TABLES[entity_set]
        if entity_set in self.change_log.untracked:
            raise QueryError(f"Entity {table.logical} isn't enabled for change tracking.", code=NOT_TRACKED)
        for option in UNSUPPORTED:
            if option in request.query:
                raise QueryError(f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.')
        token = request.query.get("$deltatoken")
        if token is not None and self.clock.now() - _issued(token) > self.change_log.keep_for:
            raise QueryError(EXPIRED_MESSAGE, code=EXPIRED)
        since = _since(token)
        # The fake's $skiptoken is the versionnumber of the last entry served: a row changed while a client pages
        # moves past it and so still comes, once, on a later page.
        after = request.query.get("$skiptoken", str(since))
        if not after.isdigit():
            raise QueryError(f"The $skiptoken '{after[:40]}' did not come from an @odata.nextLink of this fake.")
        entries = self._entries(entity_set, int(after), include_deleted=since > 0)
        page = entries[:page_size]
        base = f"{request.scheme}://{request.host}{request.path.rsplit('/', 1)[0]}"
        shown = f"({','.join(select)})" if select else ""
        body: dict = {"@odata.context": f"{base}/$metadata#{entity_set}{shown}{'/$delta' if since else ''}"}
        # The key comes whether selected or not, as in the docs' example (accountid).
        columns = [table.id_column, *(c for c in select if c != table.id_column)] if select else None
        body["value"] = [self._shape(table, row, columns, {}, False) if row is not None
                         else {"@odata.context": f"{base}/$metadata#{entity_set}/$deletedEntity", "id": record_id, "reason": "deleted"}
                         for _, record_id, row in page]
        if len(entries) > len(page):
            body["@odata.nextLink"] = str(request.url.update_query({"$skiptoken": str(page[-1][0])}))
        else:
            body["@odata.deltaLink"] = _delta_link(f"{base}/{entity_set}", select, self.version, self.clock.now())
        return body

    def _entries(self, entity_set: str, after: int, include_deleted: bool) -> list[tuple[int, str, dict | None]]:
        """(versionnumber, id, row or None when deleted) changed after `after`, oldest change first."""
        entries: list[tuple[int, str, dict | None]] = [
            (row["versionnumber"], record_id, row) for record_id, row in self.rows[entity_set].items() if row["versionnumber"] > after
        ]
        if include_deleted:  # a first read lists what exists; deletes are news only to a client holding a delta link
            entries += [(version, record_id, None) for name, record_id, version in self.change_log.deleted
                        if name == entity_set and version > after]
        return sorted(entries, key=lambda entry: entry[0])


def _since(token: str | None) -> int:
    if token is None:
        return 0
    version = token.split("!", 1)[0]
    if not version.isdigit():
        raise QueryError(f"The $deltatoken '{token[:40]}' did not come from an @odata.deltaLink of this fake.")
    return int(version)


def _issued(token: str) -> datetime:
    """When a token of this fake was handed out (its part after "!"); the fake's clock is UTC."""
    _, _, stamp = unquote(token).partition("!")
    try:
        return datetime.strptime(stamp, TOKEN_TIME).replace(tzinfo=timezone.utc)
    except ValueError:
        raise QueryError(f"The $deltatoken '{token[:40]}' did not come from an @odata.deltaLink of this fake.") from None


def _delta_link(collection: str, select: list[str] | None, version: int, now: datetime) -> str:
    # Shaped like the documented token, "<version>!<MM/dd/yyyy HH:mm:ss>", encoded: clients must pass it on untouched.
    token = quote(f"{version}!{now.astimezone(timezone.utc).strftime(TOKEN_TIME)}", safe="")
    selected = "$select=" + ",".join(select) + "&" if select else ""
    return f"{collection}?{selected}$deltatoken={token}"
