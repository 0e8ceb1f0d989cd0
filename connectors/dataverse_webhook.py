"""Dataverse webhooks: check the key, then turn the RemoteExecutionContext into a SourceEvent.

Protocol: https://learn.microsoft.com/power-apps/developer/data-platform/use-webhooks (MicrosoftDocs/powerapps-docs
`powerapps-docs/developer/data-platform/use-webhooks.md`). There is no signature: the registration carries a
secret, either as the `code` query parameter (WebhookKey) or as a header (HttpHeader).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from handoff.bot.core.errors import BadEvent, IgnoredEvent
from handoff.bot.core.models import RecordRef, SourceEvent

from .dataverse_settings import DataverseSettings

log = logging.getLogger(__name__)

SIZE_EXCEEDED_HEADER = "x-ms-dynamics-msg-size-exceeded"
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


def parse_webhook(
    body: bytes,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    settings: DataverseSettings,
    received_at: datetime,
) -> SourceEvent:
    """Authenticate, then parse; BadEvent carries the 4xx to answer, IgnoredEvent means "not ours"."""
    _authenticate(query, headers, settings)
    context = _context(body)
    table = _required(context, "PrimaryEntityName").lower()
    record_id = _guid(_required(context, "PrimaryEntityId"))
    if table not in settings.tables:
        raise IgnoredEvent(
            f"Dataverse table '{table}' is not mapped; add it to HANDOFF_DATAVERSE__TABLES or unregister its webhook step."
        )
    size_exceeded = _header(headers, SIZE_EXCEEDED_HEADER) is not None
    return SourceEvent(
        ref=RecordRef(source="dataverse", model=table, record_id=record_id),
        dedup_key=f"dataverse:{table}:{record_id}:{_delivery_id(context, body)}",
        received_at=received_at,
        hint=_hint(context, size_exceeded),
    )


def _authenticate(query: Mapping[str, str], headers: Mapping[str, str], settings: DataverseSettings) -> None:
    if settings.webhook_auth == "webhook_key":
        given, where = query.get("code"), "the `code` query parameter (WebhookKey)"
    else:
        given, where = _header(headers, settings.webhook_header), f"the `{settings.webhook_header}` header (HttpHeader)"
    expected = settings.webhook_key.get_secret_value().encode()
    if given is None or not hmac.compare_digest(given.encode(), expected):
        raise BadEvent(
            f"Wrong or missing Dataverse webhook key in {where}. Set the service endpoint's authentication value "
            "(Plug-in Registration Tool > Register New Web Hook) to HANDOFF_DATAVERSE__WEBHOOK_KEY.",
            status=401,
        )


def _context(body: bytes) -> dict:
    try:
        context = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        context = None
    if not isinstance(context, dict):
        raise BadEvent("Dataverse webhook body is not a JSON object; expected the RemoteExecutionContext a webhook step posts.")
    return context


def _required(context: dict, key: str) -> str:
    value = context.get(key)
    if not isinstance(value, str) or not value:
        raise BadEvent(f"Dataverse webhook has no {key}; expected the RemoteExecutionContext a webhook step posts.", status=422)
    return value


def _guid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadEvent(f"Dataverse webhook PrimaryEntityId '{value[:64]}' is not a GUID.", status=422) from None


def _delivery_id(context: dict, body: bytes) -> str:
    """What stays the same when Dataverse redelivers this event and differs for the next change.

    OperationId is the async operation (system job) that posted the webhook: its retry reuses it, and each
    later change gets a new one. RequestId identifies a synchronous request (async steps send null).
    CorrelationId is shared by every operation one user action sets off (it drives loop detection), so it
    would merge distinct changes and is never the key; without the ids, a redelivery repeats the body.
    """
    for key in ("OperationId", "RequestId"):
        value = context.get(key)
        if isinstance(value, str) and value and value != EMPTY_GUID:
            return f"{key}:{value.lower()}"
    return f"body:{hashlib.sha256(body).hexdigest()[:32]}"


def _hint(context: dict, size_exceeded: bool) -> dict[str, object]:
    """The webhook's own view of the record: Target attributes overlaid by the post image.

    When the payload passed 256 KB Dataverse drops InputParameters and images and says so in a header;
    the record is re-read anyway, so the hint is just thinner.
    """
    hint: dict[str, object] = {"message": context.get("MessageName"), "size_exceeded": size_exceeded}
    formatted: dict[str, str] = {}
    entities = [p.get("value") for p in _pairs(context.get("InputParameters")) if p.get("key") == "Target"]
    entities += [p.get("value") for p in _pairs(context.get("PostEntityImages"))]
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        for pair in _pairs(entity.get("Attributes")):
            if isinstance(pair.get("key"), str):
                hint[pair["key"]] = _flatten(pair.get("value"))
        formatted.update({p["key"]: p.get("value") for p in _pairs(entity.get("FormattedValues")) if isinstance(p.get("key"), str)})
        if entity.get("RowVersion"):
            hint["row_version"] = str(entity["RowVersion"])
    hint["formatted"] = formatted
    return hint


def _pairs(value: object) -> list[dict]:
    """Dataverse serialises collections as `[{"key": ..., "value": ...}]` lists."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _flatten(value: object) -> object:
    """Typed values carry `__type` (`OptionSetValue:…`, `Money:…`, `EntityReference:…`); keep what they mean."""
    if not isinstance(value, dict):
        return str(value) if isinstance(value, Decimal) else value
    kind = str(value.get("__type", "")).split(":", 1)[0]
    if kind == "EntityReference":
        return {"id": value.get("Id"), "logical_name": value.get("LogicalName"), "name": value.get("Name")}
    if kind in ("OptionSetValue", "Money"):
        return _flatten(value.get("Value"))
    return {key: _flatten(item) for key, item in value.items() if key != "__type"}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # aiohttp's headers are case-insensitive already; a plain mapping from a test or another server may not be.
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
