"""The Odoo connector: its settings, the webhook an automation rule posts, and purchase orders read and decided."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, SecretStr, field_validator

from handoff.bot.core.errors import BadEvent, ErpRefused, IgnoredEvent, RecordNotFound
from handoff.bot.core.models import Decision, ErpPerson, ErpRecord, Line, RecordRef, SourceEvent, Verb, VendorHistory
from handoff.bot.core.retry import Backoff, with_retries

from .odoo_rpc import OdooRpc

log = logging.getLogger(__name__)

PURCHASE_ORDER = "purchase.order"
# States from odoo/odoo addons/purchase/models/purchase_order.py; 'done' ("Locked") exists up to 17.
OPEN_STATES = ["draft", "sent", "to approve", "purchase"]
APPROVED_STATES = {"purchase", "done"}
# What reconciliation polls for: waiting for approval, or decided (approved, locked, cancelled) in Odoo itself.
RECONCILED_STATES = ["to approve", "purchase", "done", "cancel"]
FIRST_POLL_LOOKBACK = timedelta(days=1)
# write_uid is a log-access column every model has (odoo/models.py LOG_ACCESS_COLUMNS): who saved the order last.
# date_approve ("Confirmation Date") is what button_approve stamps (addons/purchase/models/purchase_order.py).
# message_attachment_count comes with mail.thread (addons/mail/models/mail_thread.py): it counts the ir.attachment rows
# with this res_model and res_id, as a search_count would, in the same read.
ORDER_FIELDS = ["name", "state", "partner_id", "amount_total", "currency_id", "user_id", "order_line", "company_id", "write_date", "date_order",
                "write_uid", "date_approve", "message_attachment_count"]
# What says where an order stands: read again after a button, instead of the whole order with its lines and vendor.
STANDING_FIELDS = ["name", "state", "write_date", "date_approve", "write_uid"]
LINE_FIELDS = ["name", "product_qty", "price_unit", "price_subtotal", "display_type"]
# A user's name, login and email rarely change, yet every order of one purchase representative would read them again:
# each is kept this long per process (a login change shows within a minute), for at most this many users.
PEOPLE_TTL_S = 60.0
PEOPLE_KEPT = 1024


class OdooSettings(BaseModel):
    """How Handoff reaches one Odoo database, and which of its fields mean what (HANDOFF_ODOO__*)."""

    url: str
    database: str
    login: str  # the API user's login: JSON-RPC authenticates with it, and error messages name it
    api_key: SecretStr
    api: Literal["auto", "json2", "jsonrpc"] = "auto"
    webhook_secret: SecretStr
    models: list[str] = [PURCHASE_ORDER]
    business_unit_field: str | None = "company_id"
    region_by_business_unit: dict[str, str] = {}
    exception_field: str | None = None
    timeout_s: float = 10

    @field_validator("url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http(s) URL; set HANDOFF_ODOO__URL to Odoo's base URL, e.g. https://mycompany.odoo.com")
        return url.rstrip("/")

    @field_validator("models")
    @classmethod
    def _supported(cls, models: list[str]) -> list[str]:
        unknown = sorted(set(models) - {PURCHASE_ORDER})
        if unknown:
            raise ValueError(f"Handoff can read only {PURCHASE_ORDER} from Odoo, not {', '.join(unknown)}; remove them from HANDOFF_ODOO__MODELS")
        return models


def parse_webhook(body: bytes, settings: OdooSettings, received_at: datetime | None = None) -> SourceEvent:
    """The event in a body posted by an automation rule's "Send Webhook Notification" action (protocols.md §4)."""
    try:
        data = json.loads(body)
    except ValueError as error:
        raise BadEvent(f"Odoo webhook body is not JSON ({error}). Point an automation rule's \"Send Webhook Notification\" action at this URL.") from None
    if not isinstance(data, dict):
        raise BadEvent(f"Odoo webhook body must be a JSON object, got {type(data).__name__}. Point an automation rule's \"Send Webhook Notification\" action at this URL.")
    missing = [key for key in ("_model", "_id") if key not in data]
    if missing:
        raise BadEvent(f"Odoo webhook lacks {' and '.join(missing)}: this body did not come from a \"Send Webhook Notification\" action.", status=422)
    model, record_id, write_date = data["_model"], data["_id"], data.get("write_date", False)
    if not isinstance(model, str) or not model:
        raise BadEvent(f"Odoo webhook _model must be a model name such as \"{PURCHASE_ORDER}\", got {model!r}.", status=422)
    if not isinstance(record_id, int) or isinstance(record_id, bool) or record_id <= 0:
        raise BadEvent(f"Odoo webhook _id must be a positive record id, got {record_id!r}.", status=422)
    if write_date is not False and not isinstance(write_date, str):
        raise BadEvent(f"Odoo webhook write_date must be a \"YYYY-MM-DD HH:MM:SS\" string, got {write_date!r}.", status=422)
    if model not in settings.models:
        raise IgnoredEvent(f"Odoo model {model} is not routed (HANDOFF_ODOO__MODELS is {settings.models}).")
    # write_date names the change, so Odoo firing twice for one save dedups; without it, the body itself does.
    change = write_date or hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return SourceEvent(
        ref=RecordRef(source="odoo", model=model, record_id=str(record_id)),
        dedup_key=f"odoo:{model}:{record_id}:{change}",
        received_at=received_at or datetime.now(timezone.utc),
        # Scalars only: many2one arrive as bare ids (read with load=None) and x2many as id lists.
        hint={k: v for k, v in data.items() if not k.startswith("_") and (v is None or isinstance(v, (str, int, float)))},
    )


class OdooConnector:
    """ErpConnector for Odoo purchase orders, over JSON-2 or JSON-RPC."""

    source = "odoo"

    def __init__(
        self,
        settings: OdooSettings,
        session: aiohttp.ClientSession,
        backoff: Backoff = Backoff(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._rpc = OdooRpc(settings, session)
        self._backoff = backoff
        self._sleep = sleep
        self._people: dict[int, tuple[float, ErpPerson]] = {}  # user id -> (good until, monotonic; the person)

    async def fetch_record(self, ref: RecordRef) -> ErpRecord:
        """The purchase order as Odoo has it now, with its lines, requester, vendor history and attachment count."""
        order_id = _order_id(ref)
        fields = ORDER_FIELDS + [f for f in (self.settings.business_unit_field, self.settings.exception_field) if f and f not in ORDER_FIELDS]
        rows = await self._call(ref.model, "read", [order_id], fields=fields)
        if not rows:
            raise RecordNotFound(
                f"Odoo has no {ref.model} {order_id} that the API user {self.settings.login!r} can see. "
                "It was deleted, or the API user lacks access to its company."
            )
        order = rows[0]
        lines, requester, open_orders, exceptions = await asyncio.gather(
            self._lines(order), self._requester(order), self._open_orders(order), self._recent_exceptions(order)
        )
        business_unit = _text(order.get(self.settings.business_unit_field)) if self.settings.business_unit_field else None
        exception = order.get(self.settings.exception_field) if self.settings.exception_field else None
        return ErpRecord(
            ref=ref,
            reference=order["name"],
            vendor=_text(order["partner_id"]) or "(no vendor)",
            amount=Decimal(str(order["amount_total"])),
            currency=_text(order["currency_id"]) or "",
            requester=requester,
            lines=lines,
            business_unit=business_unit,
            region=self.settings.region_by_business_unit.get(business_unit) if business_unit else None,
            exception_type=str(exception) if exception else None,
            attachment_count=order.get("message_attachment_count") or 0,
            url=self.record_url(ref),
            vendor_history=VendorHistory(open_orders=open_orders, recent_exceptions=exceptions),
            **_where_it_stands(order),
        )

    async def unchanged(self, record: ErpRecord) -> bool | None:
        """Whether the order and its lines are still as `record` shows them, from two reads; None when it can't tell."""
        if record.etag is None:
            return None
        # A price or quantity edit recomputes the stored amount_total, and the ORM stamps write_date on computed-field
        # writes too (odoo/models.py BaseModel._write_multi: "set magic fields (already done by write(), but not for
        # computed fields)"). write_date reads at one-second precision, so amount_total and state are compared as well.
        rows = await self._call(record.ref.model, "read", [_order_id(record.ref)], fields=["write_date", "state", "amount_total", "order_line"])
        if not rows:
            return False
        row = rows[0]
        if row["write_date"] != record.etag or row["state"] != record.state or Decimal(str(row["amount_total"])) != record.amount:
            return False
        # A line's description is saved on the line alone: the order keeps its write_date, yet the card would be stale.
        return await self._lines(row) == record.lines

    async def write_decision(self, record: ErpRecord, decision: Decision) -> ErpRecord:
        """Approve (button_approve) or reject (button_cancel), confirm it took by re-reading, note it in the chatter."""
        ref, order_id = record.ref, _order_id(record.ref)
        if decision.verb is Verb.APPROVE:
            await self._call(ref.model, "button_approve", [order_id])
            live = await self._decided(record)
            if live.state == "to approve":
                login = self.settings.login
                raise ErpRefused(
                    f"Odoo left {live.reference} in 'to approve' after button_approve: it silently skips orders at or above "
                    f"the company's double validation amount when the API user is not a Purchase manager. Fix: give the API "
                    f"user {login} the Purchase / Administrator group, or raise the company's double validation amount; then retry."
                )
            if live.erp_decision != "approved":
                raise ErpRefused(f"Odoo shows {live.reference} as '{live.state}' after button_approve, so it is not approved. Check it in Odoo ({live.url}), then decide again.")
            note = f"Approved in Handoff by {decision.by}."
        elif decision.verb is Verb.REJECT:
            await self._call(ref.model, "button_cancel", [order_id])
            live = await self._decided(record)
            if live.state != "cancel":
                raise ErpRefused(f"Odoo shows {live.reference} as '{live.state}' after button_cancel, so it is not cancelled. Check it in Odoo ({live.url}), then decide again.")
            note = f"Rejected in Handoff by {decision.by}: {decision.reason or 'no reason given'}"
        else:
            raise ValueError(f"{decision.verb.value} is not written back to Odoo: only approve and reject are.")
        await self._post(ref, order_id, note)
        log.info("odoo.decision_written", extra={"ref": ref.key, "verb": decision.verb.value, "state": live.state})
        return live

    async def _decided(self, record: ErpRecord) -> ErpRecord:
        """`record` as it stands after a button: state, stamps and who, re-read in one call; lines and vendor are as the
        click's check confirmed them, and no button changes them."""
        rows = await self._call(record.ref.model, "read", [_order_id(record.ref)], fields=STANDING_FIELDS)
        if not rows:
            raise RecordNotFound(f"Odoo has no {record.ref.model} {record.ref.record_id} after deciding it: it was deleted meanwhile.")
        return record.model_copy(update={"reference": rows[0]["name"], **_where_it_stands(rows[0])})

    async def changed_since(self, cursor: str | None, now: datetime, limit: int = 200) -> tuple[list[SourceEvent], str | None]:
        """Purchase orders whose approval picture changed at or after `cursor` (an Odoo write_date), oldest first.

        Each event carries the webhook's dedup key (`odoo:{model}:{id}:{write_date}`), so a change both webhooked and
        polled is ingested once. Returns the events and the cursor to pass next time.
        """
        # search_read with a domain, order and limit is the ORM's public API (odoo/models.py BaseModel.search_read;
        # External API docs "search_read"). ">=" rather than ">": write_date has one-second precision, so a save in the
        # same second as the last poll would otherwise be skipped; the dedup key makes the overlap harmless.
        # A first poll looks back a day rather than through all history: older changes were webhooked or are moot.
        since = cursor or (now.astimezone(timezone.utc) - FIRST_POLL_LOOKBACK).strftime("%Y-%m-%d %H:%M:%S")
        domain = [["write_date", ">=", since], ["state", "in", RECONCILED_STATES]]
        rows = await self._call(PURCHASE_ORDER, "search_read", domain=domain, fields=["write_date", "state"], order="write_date asc, id asc", limit=limit)
        events = [
            SourceEvent(
                ref=RecordRef(source="odoo", model=PURCHASE_ORDER, record_id=str(row["id"])),
                dedup_key=f"odoo:{PURCHASE_ORDER}:{row['id']}:{row['write_date']}",
                received_at=now,
                hint={"state": row["state"], "write_date": row["write_date"], "trigger": "poll"},
            )
            for row in rows
            if PURCHASE_ORDER in self.settings.models
        ]
        return events, (rows[-1]["write_date"] if rows else since)

    async def post_note(self, ref: RecordRef, text: str) -> None:
        """Log `text` as an internal note in the order's chatter."""
        await self._post(ref, _order_id(ref), text)

    def record_url(self, ref: RecordRef) -> str:
        # The /web# form opens the record on 17, 18 and 19 alike (18+ rewrites it to its /odoo/... routes).
        return f"{self.settings.url}/web#id={ref.record_id}&model={ref.model}&view_type=form"

    def record_from_hint(self, event: SourceEvent) -> ErpRecord:
        """What the webhook itself said; vendor and currency arrive as bare ids, so they stay unnamed."""
        hint, ref = event.hint, event.ref
        state = str(hint.get("state") or "to approve")
        partner = hint.get("partner_id")
        return ErpRecord(
            ref=ref,
            reference=str(hint.get("name") or f"{ref.model} {ref.record_id}"),
            state=state,
            vendor=f"Odoo partner #{partner}" if partner else "(vendor unknown)",
            amount=Decimal(str(hint.get("amount_total") or 0)),
            currency="",
            url=self.record_url(ref),
            etag=str(hint["write_date"]) if hint.get("write_date") else None,
            awaiting_approval=state == "to approve",
        )

    async def _call(self, model: str, method: str, ids: list[int] | None = None, **params: Any) -> Any:
        return await with_retries(
            lambda: self._rpc.call(model, method, ids, **params), what=f"odoo {model}.{method}", backoff=self._backoff, sleep=self._sleep
        )

    async def _post(self, ref: RecordRef, order_id: int, text: str) -> None:
        # Not retried here: a lost answer would post the note twice. mail.thread.message_post takes keywords only.
        await self._rpc.call(ref.model, "message_post", [order_id], body=text, message_type="comment", subtype_xmlid="mail.mt_note")

    async def _lines(self, order: dict[str, Any]) -> tuple[Line, ...]:
        if not order["order_line"]:
            return ()
        rows = await self._call("purchase.order.line", "read", order["order_line"], fields=LINE_FIELDS)
        return tuple(
            Line(
                description=row["name"] or "",
                quantity=Decimal(str(row["product_qty"])),
                unit_price=Decimal(str(row["price_unit"])),
                subtotal=Decimal(str(row["price_subtotal"])),
            )
            for row in rows
            if not row.get("display_type")  # section and note lines carry no amounts
        )

    async def _requester(self, order: dict[str, Any]) -> ErpPerson | None:
        # A PO's user_id is its purchase representative, who is who asked for it in practice.
        if not order["user_id"]:
            return None
        user_id, name = order["user_id"]
        kept = self._people.get(user_id)
        # The order's own read names the user afresh, so a renamed user is read again at once.
        if kept is not None and kept[0] > time.monotonic() and kept[1].name == name:
            return kept[1]
        rows = await self._call("res.users", "read", [user_id], fields=["name", "login", "email"])
        if not rows:
            return ErpPerson(name=name)
        person = ErpPerson(name=rows[0]["name"], login=rows[0]["login"] or None, email=rows[0]["email"] or None)
        if len(self._people) >= PEOPLE_KEPT:
            self._people.clear()
        self._people[user_id] = (time.monotonic() + PEOPLE_TTL_S, person)
        return person

    async def _open_orders(self, order: dict[str, Any]) -> int:
        if not order["partner_id"]:
            return 0
        domain = [["partner_id", "=", order["partner_id"][0]], ["id", "!=", order["id"]], ["state", "in", OPEN_STATES]]
        return await self._call(PURCHASE_ORDER, "search_count", domain=domain)

    async def _recent_exceptions(self, order: dict[str, Any]) -> tuple[str, ...]:
        field = self.settings.exception_field
        if not field or not order["partner_id"]:
            return ()
        domain = [["partner_id", "=", order["partner_id"][0]], ["id", "!=", order["id"]], [field, "!=", False], ["date_order", "<", order["date_order"]]]
        rows = await self._call(PURCHASE_ORDER, "search_read", domain=domain, fields=[field], order="date_order desc", limit=3)
        return tuple(str(row[field]) for row in rows)



def _order_id(ref: RecordRef) -> int:
    if not ref.record_id.isdigit():
        raise RecordNotFound(f"{ref.key} does not name an Odoo record: Odoo ids are positive integers.")
    return int(ref.record_id)


def _text(value: Any) -> str | None:
    """A field's display text: many2one reads as [id, name], empty fields as false."""
    if isinstance(value, list) and len(value) == 2:
        return str(value[1])
    return str(value) if value not in (False, None, "") else None


def _where_it_stands(order: dict) -> dict[str, Any]:
    """The ErpRecord fields that say where an order stands, from a read with STANDING_FIELDS."""
    state = order["state"]
    return {
        "state": state,
        "etag": order.get("write_date") or None,
        "awaiting_approval": state == "to approve",
        "erp_decision": "approved" if state in APPROVED_STATES else "rejected" if state == "cancel" else None,
        # Whoever saved a decided order last decided it, unless someone edited it since: good enough to say "by".
        "decided_by": _text(order.get("write_uid")) if state in APPROVED_STATES | {"cancel"} else None,
        "decided_at": _decided_at(order, state),
    }


def _decided_at(order: dict, state: str) -> datetime | None:
    """When a decided order was decided: date_approve for an approval; a cancel stamps nothing, so its last save."""
    stamp = order.get("date_approve") if state in APPROVED_STATES else order.get("write_date") if state == "cancel" else None
    if not isinstance(stamp, str):
        return None
    # The external API returns datetimes as naive "YYYY-MM-DD HH:MM:SS" strings in UTC (odoo/fields.py Datetime).
    try:
        return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
