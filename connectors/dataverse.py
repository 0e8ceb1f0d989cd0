"""Dataverse as an ERP: read the live record, write the decision back with If-Match, keep notes on the record.

Web API reference: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/overview (retrieve with
$select/$expand, `@odata.etag` W/"<versionnumber>", conditional PATCH -> 204 or 412, `$count=true` -> `@odata.count`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

import aiohttp

from handoff.bot.core.errors import ConfigError, ErpConflict, ErpRefused
from handoff.bot.core.models import Decision, ErpPerson, ErpRecord, Line, RecordRef, SourceEvent, Verb, VendorHistory
from handoff.bot.core.pacing import Budget
from handoff.bot.core.retry import Backoff

from . import dataverse_changes
from .dataverse_auth import MsalTokenProvider, TokenProvider
from .dataverse_settings import DataverseSettings, Lookup, PersonLookup, TableMapping
from .dataverse_webapi import FORMATTED, WebApi
from .dataverse_webhook import parse_webhook

__all__ = ["DataverseConnector", "DataverseSettings", "MsalTokenProvider", "TableMapping", "parse_webhook"]

PREFER_FORMATTED = f'odata.include-annotations="{FORMATTED}"'
# Only the count matters; the page size keeps the rows themselves out of the answer (count-rows.md).
PREFER_COUNT_ONLY = "odata.maxpagesize=1"


class DataverseConnector:
    """The ErpConnector for one Dataverse environment."""

    source = "dataverse"

    def __init__(
        self,
        settings: DataverseSettings,
        session: aiohttp.ClientSession,
        token_provider: TokenProvider,
        backoff: Backoff = Backoff(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        budget: Budget | None = None,
    ) -> None:
        self.settings = settings
        self._api = WebApi(settings.url, session, token_provider, backoff, sleep, budget)

    async def fetch_record(self, ref: RecordRef) -> ErpRecord:
        """The record as it is now, with its lines, attachment count, the vendor's open orders and the ETag."""
        table = self._table(ref)
        row = await self._api.get(_entity(table, ref.record_id), _record_query(table), prefer=PREFER_FORMATTED)
        lines, open_orders, exceptions, attachments = await asyncio.gather(
            self._lines(table, ref.record_id),
            self._open_orders(table, ref.record_id, row.get(table.vendor_lookup.value_column)),
            self._recent_exceptions(table, ref.record_id, row),
            # Notes with a file are the record's attachments (annotation.isdocument).
            self._count("annotations", "annotationid", f"_objectid_value eq {ref.record_id} and isdocument eq true"),
        )
        status = row.get(table.status_column)
        decision = _decision(status, table)
        return ErpRecord(
            ref=ref,
            reference=str(row.get(table.reference_column) or ref.record_id),
            state=_label(row, table.status_column) or "unknown",
            vendor=_related(row, table.vendor_lookup) or "(no vendor)",
            amount=_decimal(row.get(table.amount_column)),
            currency=_related(row, table.currency_lookup) or "",
            requester=_person(row, table.requester_lookup),
            lines=lines,
            business_unit=_related(row, table.business_unit_lookup),
            region=_label(row, table.region_column),
            exception_type=_label(row, table.exception_column),
            attachment_count=attachments,
            url=self.record_url(ref),
            etag=row.get("@odata.etag"),
            vendor_history=VendorHistory(open_orders=open_orders, recent_exceptions=exceptions),
            awaiting_approval=status in table.awaiting_values,
            erp_decision=decision,
            decided_at=_decided_at(row.get(table.modified_column)) if decision else None,
        )

    async def unchanged(self, record: ErpRecord) -> bool | None:
        """Whether the row is still as `record` shows it, by a conditional GET; None when there is no ETag to ask with."""
        if record.etag is None:
            return None
        table = self._table(record.ref)
        if not await self._api.not_modified(_entity(table, record.ref.record_id), {"$select": table.status_column}, record.etag):
            return False
        # Lines are rows of their own table: editing one leaves the parent's ETag as it was, so they are compared too.
        return table.lines is None or await self._lines(table, record.ref.record_id) == record.lines

    async def write_decision(self, record: ErpRecord, decision: Decision) -> ErpRecord:
        """Set the status column under If-Match, note a rejection's reason, and return the record re-read.

        Raises ErpConflict when the record changed since `record` was read: the drift path.
        """
        table = self._table(record.ref)
        target = {Verb.APPROVE: table.approved_value, Verb.REJECT: table.rejected_value}.get(decision.verb)
        if target is None:
            raise ValueError(f"Dataverse write-back takes approve or reject, not {decision.verb.value}.")
        if record.etag is None:
            raise ErpConflict(
                f"{record.reference} was built from the webhook alone, without an ETag; re-read it before writing a decision."
            )
        path = _entity(table, record.ref.record_id)
        try:
            await self._api.patch(path, {table.status_column: target}, if_match=record.etag)
        except ErpConflict:
            # A retry of a write that already got through finds its own change; anything else is drift.
            current = await self._api.get(path, {"$select": table.status_column})
            if current.get(table.status_column) != target:
                raise
        if decision.verb is Verb.REJECT:
            await self._note(record.ref, f"Rejected by {decision.by}", decision.reason or "No reason given.")
        confirmed = await self.fetch_record(record.ref)
        if confirmed.erp_decision is None:
            raise ErpRefused(
                f"Dataverse accepted the {decision.verb.value} of {record.reference}, but the record now shows "
                f"'{confirmed.state}'. A plug-in, flow or business rule may have changed it back; check the record's audit history."
            )
        return confirmed

    def requests(self, ref: RecordRef, verb: Verb | None = None) -> int:
        """At most how many Web API requests `fetch_record(ref)` makes, or `write_decision` with `verb` (CountsRequests)."""
        table = self._table(ref)
        # The row, its lines, the vendor's open rows, their exception types, the attachment count.
        read = 3 + (table.lines is not None) + (table.exception_column is not None)
        if verb is None:
            return read
        # The PATCH, a rejection's note, the confirming re-read. A 412 costs one more GET: rare, and a 429 then says so.
        return 1 + (verb is Verb.REJECT) + read

    async def changed_since(self, cursor: str | None, now: datetime, page_size: int = 500) -> tuple[list[SourceEvent], str | None]:
        """Mapped rows waiting for approval or decided that changed since `cursor`, by change tracking; the next cursor."""
        return await dataverse_changes.changed_since(self._api, self.settings.tables, cursor, now, page_size)

    async def post_note(self, ref: RecordRef, text: str) -> None:
        """Add a note (annotation) to the record's timeline."""
        await self._note(ref, "Handoff", text)

    def record_url(self, ref: RecordRef) -> str:
        return f"{self.settings.url}/main.aspx?etn={ref.model}&id={ref.record_id}&pagetype=entityrecord"

    def record_from_hint(self, event: SourceEvent) -> ErpRecord:
        """The webhook's own figures. No ETag: a decision on it needs a re-read first."""
        table, hint = self._table(event.ref), event.hint
        formatted = hint.get("formatted") if isinstance(hint.get("formatted"), dict) else {}
        status = hint.get(table.status_column)
        vendor = hint.get(table.vendor_lookup.column)
        return ErpRecord(
            ref=event.ref,
            reference=str(hint.get(table.reference_column) or hint.get("name") or event.ref.record_id),
            state=str(formatted.get(table.status_column) or status or "unknown"),
            vendor=(vendor.get("name") if isinstance(vendor, dict) else None) or "(vendor not in the webhook)",
            amount=_decimal(hint.get(table.amount_column)),
            currency="",
            url=self.record_url(event.ref),
            awaiting_approval=status is None or status in table.awaiting_values,
        )

    def _table(self, ref: RecordRef) -> TableMapping:
        try:
            return self.settings.tables[ref.model]
        except KeyError:
            raise ConfigError(
                f"Dataverse table '{ref.model}' is not mapped, but {ref.key} needs it. Add it to HANDOFF_DATAVERSE__TABLES."
            ) from None

    async def _lines(self, table: TableMapping, record_id: str) -> tuple[Line, ...]:
        spec = table.lines
        if spec is None:
            return ()
        columns = [spec.description_column, spec.quantity_column, spec.unit_price_column, spec.subtotal_column]
        body = await self._api.get(spec.entity_set, {
            "$select": ",".join(columns),
            "$filter": f"_{spec.parent_column}_value eq {record_id}",
        })
        return tuple(
            Line(
                description=str(row.get(spec.description_column) or ""),
                quantity=_decimal(row.get(spec.quantity_column)),
                unit_price=_decimal(row.get(spec.unit_price_column)),
                subtotal=_decimal(row.get(spec.subtotal_column)),
            )
            for row in body.get("value", [])
        )

    async def _open_orders(self, table: TableMapping, record_id: str, vendor_id: object) -> int:
        """The vendor's other open rows in the same table."""
        if not vendor_id:
            return 0
        where = f"{table.vendor_lookup.value_column} eq {vendor_id} and {table.id_column} ne {record_id}"
        return await self._count(table.entity_set, table.id_column, f"{where} and {table.open_filter}" if table.open_filter else where)

    async def _recent_exceptions(self, table: TableMapping, record_id: str, row: dict) -> tuple[str, ...]:
        """The exception types on the vendor's latest other rows, newest first."""
        column, vendor_id = table.exception_column, row.get(table.vendor_lookup.value_column)
        if not column or not vendor_id:
            return ()
        body = await self._api.get(table.entity_set, {
            "$select": column,
            "$filter": f"{table.vendor_lookup.value_column} eq {vendor_id} and {table.id_column} ne {record_id} and {column} ne null",
            "$orderby": f"{table.modified_column} desc",
            "$top": "3",
        }, prefer=PREFER_FORMATTED)
        return tuple(label for other in body.get("value", []) if (label := _label(other, column)))

    async def _count(self, entity_set: str, id_column: str, where: str) -> int:
        body = await self._api.get(entity_set, {"$select": id_column, "$filter": where, "$count": "true"}, prefer=PREFER_COUNT_ONLY)
        return int(body.get("@odata.count", 0))

    async def _note(self, ref: RecordRef, subject: str, text: str) -> None:
        table = self._table(ref)
        # The note's single-valued navigation property to its regarding record is objectid_<table>.
        await self._api.post("annotations", {
            "subject": subject,
            "notetext": text,
            f"objectid_{ref.model}@odata.bind": f"/{_entity(table, ref.record_id)}",
        })


def _entity(table: TableMapping, record_id: str) -> str:
    return f"{table.entity_set}({record_id})"


def _record_query(table: TableMapping) -> dict[str, str]:
    columns = [table.id_column, table.reference_column, table.amount_column, table.status_column, table.modified_column,
               table.vendor_lookup.value_column]
    columns += [c for c in (table.region_column, table.exception_column) if c]
    lookups: list[Lookup] = [table.currency_lookup, table.vendor_lookup]
    lookups += [lk for lk in (table.requester_lookup, table.business_unit_lookup) if lk is not None]
    return {"$select": ",".join(columns), "$expand": ",".join(f"{lk.nav}($select={','.join(_columns(lk))})" for lk in lookups)}


def _columns(lookup: Lookup) -> list[str]:
    if isinstance(lookup, PersonLookup):
        return [lookup.name_column, lookup.login_column, lookup.email_column]
    return [lookup.name_column]


def _related(row: dict, lookup: Lookup | None) -> str | None:
    related = row.get(lookup.nav) if lookup else None
    value = related.get(lookup.name_column) if isinstance(related, dict) and lookup else None
    return str(value) if value is not None else None


def _person(row: dict, lookup: PersonLookup | None) -> ErpPerson | None:
    related = row.get(lookup.nav) if lookup else None
    if not isinstance(related, dict) or lookup is None:
        return None
    login, email = related.get(lookup.login_column), related.get(lookup.email_column)
    return ErpPerson(name=str(related.get(lookup.name_column) or login or email or "unknown"), login=login, email=email)


def _label(row: dict, column: str | None) -> str | None:
    """A choice's label when the API sent one, else the raw value."""
    if column is None or row.get(column) is None:
        return None
    return str(row.get(f"{column}@{FORMATTED}") or row[column])


def _decision(status: object, table: TableMapping) -> str | None:
    return {table.approved_value: "approved", table.rejected_value: "rejected"}.get(status) if isinstance(status, int) else None


def _decided_at(value: object) -> datetime | None:
    # Dataverse has no "approved on" column: the last modification of a decided row is the closest fact. The Web API
    # sends DateTime columns as ISO 8601 in UTC, e.g. "2026-11-24T10:42:00Z" (learn.microsoft.com, "Behavior and
    # format of the date and time column").
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)  # Python 3.11 reads the trailing "Z" as UTC
    except ValueError:
        return None


def _decimal(value: object) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)
