"""Enrich: read the live record back from the ERP and shape it into the packet an approver sees."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from .errors import ErpError, ErpUnavailable, RecordNotFound
from .models import ApprovalPacket, ErpRecord, RecordRef, SourceEvent
from .outage import Outages
from .ports import ErpConnector
from .retry import Backoff, with_retries

log = logging.getLogger(__name__)


def missing_items(record: ErpRecord) -> tuple[str, ...]:
    """What an approver would have to chase before deciding; shown on the card so nobody opens the ERP to find out."""
    missing = []
    if record.attachment_count == 0:
        missing.append("No quotation or supporting document attached")
    if record.requester is None:
        missing.append("No requester on the record")
    if not record.lines:
        missing.append("No order lines")
    return tuple(missing)


def build_packet(
    request_id: str,
    version: int,
    record: ErpRecord,
    policy_notes: tuple[str, ...],
    incomplete_reason: str | None = None,
) -> ApprovalPacket:
    return ApprovalPacket(
        request_id=request_id,
        version=version,
        record=record,
        policy_notes=policy_notes,
        # A hint-only record has no lines or attachments to speak of: the incomplete banner says why instead.
        missing=() if incomplete_reason else missing_items(record),
        incomplete_reason=incomplete_reason,
        fingerprint=record.fingerprint(),
    )


async def read_record(
    connector: ErpConnector,
    ref: RecordRef,
    backoff: Backoff,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ErpRecord:
    """The live record, retried with backoff on transient errors."""
    return await with_retries(lambda: connector.fetch_record(ref), what=f"read {ref.key}", backoff=backoff, sleep=sleep)


async def enrich(
    connector: ErpConnector,
    event: SourceEvent,
    backoff: Backoff,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    outages: Outages | None = None,
    now: datetime | None = None,
) -> tuple[ErpRecord, str | None]:
    """The live record, or the webhook's own hint and the reason the ERP could not be read.

    A packet that cannot be enriched still reaches people; it is marked incomplete and re-read before any decision.
    RecordNotFound propagates: there is nothing to approve.
    """
    outages = outages if outages is not None else Outages()
    try:
        record = await read_record(connector, event.ref, backoff, sleep)
    except RecordNotFound:
        raise
    except ErpError as error:
        log.warning("enrich.failed", extra={"ref": event.ref.key, "error": str(error)})
        if isinstance(error, ErpUnavailable):
            # People act on "since when": a blip and a long outage call for different answers.
            said = f"{outages.down(event.ref.source, now or datetime.now(timezone.utc)).describe()}: it could not be read"
        else:
            said = f"{event.ref.source.capitalize()} could not be read"
        return connector.record_from_hint(event), f"{said} ({error}); figures are from the webhook and will be re-read before any decision counts."
    outages.up(event.ref.source)
    return record, None


def describe_changes(before: ErpRecord, after: ErpRecord) -> list[str]:
    """What an approver would want to know changed, in words; empty when the decision-relevant picture is the same."""
    changes = []
    if (before.amount, before.currency) != (after.amount, after.currency):
        changes.append(f"amount {before.amount:,.2f} {before.currency} → {after.amount:,.2f} {after.currency}")
    if before.vendor != after.vendor:
        changes.append(f"vendor {before.vendor} → {after.vendor}")
    if before.state != after.state:
        changes.append(f"state {before.state} → {after.state}")
    if before.lines != after.lines:
        changes.append(f"order lines changed ({len(before.lines)} → {len(after.lines)} lines)")
    return changes or ["details re-read from the ERP"]
