"""The fake Odoo's in-memory database: the few models and ORM methods Handoff uses, with Odoo's own semantics.

Semantics follow odoo/odoo: `read()` skips missing ids and returns many2one as [id, display_name] (`load=None`: the
bare id); `addons/purchase/models/purchase_order.py` `button_approve` silently skips orders `_approval_allowed()`
refuses (two-step validation, amount_total >= threshold, user not in purchase.group_purchase_manager);
`button_cancel` refuses locked orders; `mail.thread.message_post` takes keyword arguments only.
"""

from __future__ import annotations

import html
import inspect
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

PURCHASE_MANAGER = "purchase.group_purchase_manager"
M2O, O2M, M2M = "many2one", "one2many", "many2many"
# mail.thread's message_attachment_count (addons/mail/models/mail_thread.py): ir.attachment rows with
# res_model = the record's model and res_id = its id, computed on read, never stored.
ATTACHMENTS = "attachment_count"

# model -> field -> None (scalar), (M2O, comodel), (M2M, comodel), (O2M, comodel, inverse field) or (ATTACHMENTS,)
SCHEMA: dict[str, dict[str, Any]] = {
    "purchase.order": {
        "name": None, "state": None, "partner_id": (M2O, "res.partner"), "amount_total": None,
        "currency_id": (M2O, "res.currency"), "user_id": (M2O, "res.users"), "company_id": (M2O, "res.company"),
        "order_line": (O2M, "purchase.order.line", "order_id"), "date_order": None, "date_approve": None,
        "locked": None, "write_date": None, "write_uid": (M2O, "res.users"), "message_attachment_count": (ATTACHMENTS,),
    },
    "purchase.order.line": {
        "name": None, "order_id": (M2O, "purchase.order"), "product_qty": None, "price_unit": None,
        "price_subtotal": None, "display_type": None, "write_date": None,
    },
    "res.partner": {"name": None, "email": None, "write_date": None},
    "res.users": {"name": None, "login": None, "email": None, "write_date": None},
    "res.company": {
        "name": None, "currency_id": (M2O, "res.currency"), "po_double_validation": None,
        "po_double_validation_amount": None, "po_lock": None, "write_date": None,
    },
    "res.currency": {"name": None, "write_date": None},
    "ir.attachment": {"name": None, "res_model": None, "res_id": None, "write_date": None},
    "mail.message.subtype": {"name": None, "write_date": None},
    "mail.message": {
        "model": None, "res_id": None, "body": None, "message_type": None,
        "subtype_id": (M2O, "mail.message.subtype"), "author_id": (M2O, "res.partner"), "write_date": None,
    },
    # Automation rules (odoo/odoo addons/base_automation/models/base_automation.py, 17.0 rework) and the webhook
    # server action they run (odoo/addons/base/models/ir_actions.py: state 'webhook', webhook_url, webhook_field_ids).
    "ir.model": {"name": None, "model": None, "write_date": None},
    "ir.model.fields": {"name": None, "model": None, "model_id": (M2O, "ir.model"), "ttype": None, "write_date": None},
    "ir.model.fields.selection": {"name": None, "value": None, "field_id": (M2O, "ir.model.fields"), "write_date": None},
    "base.automation": {
        "name": None, "model_id": (M2O, "ir.model"), "trigger": None, "trigger_field_ids": (M2M, "ir.model.fields"),
        "trg_selection_field_id": (M2O, "ir.model.fields.selection"), "filter_domain": None, "active": None,
        "action_server_ids": (O2M, "ir.actions.server", "base_automation_id"), "write_date": None,
    },
    "ir.actions.server": {
        "name": None, "model_id": (M2O, "ir.model"), "state": None, "usage": None, "webhook_url": None,
        "webhook_field_ids": (M2M, "ir.model.fields"), "base_automation_id": (M2O, "base.automation"), "write_date": None,
    },
}
# Only Administration / Settings (base.group_system) may manage automation rules and server actions.
SETTINGS_ADMIN_MODELS = frozenset({"base.automation", "ir.actions.server"})
METADATA_MODELS = frozenset({"ir.model", "ir.model.fields", "ir.model.fields.selection"})
PURCHASE_STATES = {"draft": "RFQ", "sent": "RFQ Sent", "to approve": "To Approve", "purchase": "Purchase Order", "done": "Locked", "cancel": "Cancelled"}
SUBTYPES = {"mail.mt_comment": "Discussions", "mail.mt_note": "Note"}
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
    "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
}


class OdooError(Exception):
    """An exception as Odoo serialises it: fully qualified `name`, `message`, and the HTTP status JSON-2 gives it."""

    def __init__(self, name: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.name, self.message, self.status = name, message, status


class Created(list):
    """Ids of records a method returns: JSON-2 answers the id list, JSON-RPC the single id (`@api.returns`)."""


class OdooDb:
    """Records by model and id, plus the users' groups, which Odoo keeps off the wire."""

    def __init__(self, version: int, clock: Callable[[], datetime]) -> None:
        self.version = version
        self.clock = clock
        self.schema = {model: dict(fields) for model, fields in SCHEMA.items()}
        self.records: dict[str, dict[int, dict[str, Any]]] = {model: {} for model in SCHEMA}
        self.groups: dict[int, set[str]] = {}
        self.denied_models: set[str] = set()
        self._next_id = 1
        self._last_stamp: datetime | None = None
        self._metadata_seeded = False
        self.subtypes = {xmlid: self.create("mail.message.subtype", {"name": name}) for xmlid, name in SUBTYPES.items()}

    def stamp(self) -> str:
        """A fresh write_date, strictly later than the last one so every change is visible as a change."""
        now = self.clock().astimezone(timezone.utc).replace(microsecond=0, tzinfo=None)
        if self._last_stamp and now <= self._last_stamp:
            now = self._last_stamp + timedelta(seconds=1)
        self._last_stamp = now
        return now.strftime("%Y-%m-%d %H:%M:%S")

    def declare(self, model: str, field: str) -> None:
        """Add a custom field (Studio's x_ fields), empty on every existing record."""
        self.schema[model].setdefault(field, None)
        for values in self.records[model].values():
            values.setdefault(field, False)

    def create(self, model: str, values: dict[str, Any]) -> int:
        record_id, self._next_id = self._next_id, self._next_id + 1
        scalars = {f: [] if kind and kind[0] == M2M else False for f, kind in self.schema[model].items() if not kind or kind[0] not in (O2M, ATTACHMENTS)}
        self.records[model][record_id] = {**scalars, **self._commands(model, values, {}), "write_date": self.stamp()}
        return record_id

    def update(self, model: str, record_id: int, values: dict[str, Any], uid: int | None = None) -> None:
        """Write `values` as user `uid`: write_date and (where the model lists it) write_uid follow, as the ORM's
        log-access columns do (odoo/models.py LOG_ACCESS_COLUMNS)."""
        self._check_fields(model, values)
        record = self.records[model][record_id]
        logged: dict[str, Any] = {"write_date": self.stamp()}
        if uid is not None and "write_uid" in self.schema[model]:
            logged["write_uid"] = uid
        record.update(self._commands(model, values, record), **logged)

    def seed_metadata(self) -> None:
        """ir.model, ir.model.fields and purchase.order's state values, made on first use so other ids stay put."""
        if self._metadata_seeded:
            return
        self._metadata_seeded = True
        for model, fields in SCHEMA.items():
            model_id = self.create("ir.model", {"name": model, "model": model})
            for name, kind in fields.items():
                ttype = ("integer" if kind[0] == ATTACHMENTS else kind[0]) if kind else ("selection" if name == "state" else "char")
                field_id = self.create("ir.model.fields", {"name": name, "model": model, "model_id": model_id, "ttype": ttype})
                if model == "purchase.order" and name == "state":
                    for value, label in PURCHASE_STATES.items():
                        self.create("ir.model.fields.selection", {"name": label, "value": value, "field_id": field_id})

    def _commands(self, model: str, values: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        """x2many write commands as Odoo's ORM takes them: (6, 0, ids) replaces, (4, id) links, a bare id list replaces."""
        resolved = dict(values)
        for field, value in values.items():
            kind = self.schema[model].get(field)
            if not (kind and kind[0] == M2M and isinstance(value, list)):
                continue
            ids = list(current.get(field) or [])
            for command in value:
                if isinstance(command, int):
                    ids = [*ids, command] if command not in ids else ids
                elif command[0] == 6:
                    ids = list(command[2])
                elif command[0] == 4 and command[1] not in ids:
                    ids.append(command[1])
            resolved[field] = ids
        return resolved

    def find(self, model: str, **values: Any) -> int | None:
        return next((rid for rid, rec in self.records[model].items() if all(rec.get(k) == v for k, v in values.items())), None)

    def read(self, model: str, ids: list[int], fields: list[str] | None, load: str | None = "_classic_read") -> list[dict[str, Any]]:
        names = fields or list(self.schema[model])
        self._check_fields(model, names)
        return [{"id": rid, **{f: self._value(model, rid, f, load) for f in names}} for rid in ids if rid in self.records[model]]

    def search(self, model: str, domain: list[Any], order: str | None = None, offset: int = 0, limit: int | None = None) -> list[int]:
        ids = [rid for rid in self.records[model] if self._matches(model, rid, domain)]
        for term in reversed((order or "id desc").split(",")):
            field, _, direction = term.strip().partition(" ")
            ids.sort(key=lambda rid: self._sort_key(model, rid, field), reverse=direction.strip().lower() == "desc")
        return ids[offset:None if limit is None else offset + limit]

    def _value(self, model: str, record_id: int, field: str, load: str | None) -> Any:
        kind = self.schema[model][field]
        if kind and kind[0] == O2M:
            return self.search(kind[1], [[kind[2], "=", record_id]], order="id")
        if kind and kind[0] == ATTACHMENTS:
            return len(self.search("ir.attachment", [["res_model", "=", model], ["res_id", "=", record_id]]))
        if kind and kind[0] == M2M:
            return list(self.records[model][record_id].get(field) or [])
        value = self.records[model][record_id].get(field, False)
        if kind and kind[0] == M2O and value and load is not None:
            target = self.records[kind[1]].get(value)
            return [value, target["name"]] if target else False
        return value

    def _matches(self, model: str, record_id: int, domain: list[Any]) -> bool:
        for term in domain:
            if term == "&":
                continue
            if isinstance(term, str) or len(term) != 3 or term[1] not in OPERATORS:
                raise OdooError("builtins.ValueError", f"The fake Odoo understands only implicit AND of (field, op, value) leaves, not {term!r}", 500)
            field, op, expected = term
            actual = record_id if field == "id" else self._field(model, record_id, field)
            if op in ("<", ">", "<=", ">=") and (actual is False or expected is False):
                return False  # SQL: comparing with NULL is never true
            if not OPERATORS[op](actual, expected):
                return False
        return True

    def _field(self, model: str, record_id: int, field: str) -> Any:
        self._check_fields(model, [field])
        return self._value(model, record_id, field, None)

    def _sort_key(self, model: str, record_id: int, field: str) -> tuple[bool, Any]:
        value = record_id if field == "id" else self._field(model, record_id, field)
        return (value is not False, value if value is not False else 0)

    def _check_fields(self, model: str, fields: Any) -> None:
        for field in fields:
            if field != "id" and field not in self.schema[model]:
                raise OdooError("builtins.ValueError", f"Invalid field {field!r} on model {model!r}", 500)


@dataclass
class Env:
    """What a method runs on: `self` in Odoo terms (model, ids) and the calling user."""

    db: OdooDb
    model: str
    ids: list[int]
    uid: int


def read(env: Env, fields: list[str] | None = None, load: str | None = "_classic_read") -> list[dict[str, Any]]:
    return env.db.read(env.model, env.ids, fields, load)


def search_read(env: Env, domain: list | None = None, fields: list[str] | None = None, offset: int = 0, limit: int | None = None, order: str | None = None) -> list[dict[str, Any]]:
    return env.db.read(env.model, env.db.search(env.model, domain or [], order, offset, limit), fields)


def search_count(env: Env, domain: list, limit: int | None = None) -> int:
    return len(env.db.search(env.model, domain, limit=limit))


def search(env: Env, domain: list, offset: int = 0, limit: int | None = None, order: str | None = None) -> list[int]:
    return env.db.search(env.model, domain, order, offset, limit)


def write(env: Env, vals: dict[str, Any]) -> bool:
    for record_id in _existing(env):
        env.db.update(env.model, record_id, vals, env.uid)
    return True


def create(env: Env, vals_list: list[dict[str, Any]] | dict[str, Any]) -> list[int]:
    """`@api.model_create_multi`: a list of values makes a list of ids; JSON-RPC answers one id for one dict."""
    values = [vals_list] if isinstance(vals_list, dict) else vals_list
    for vals in values:
        env.db._check_fields(env.model, vals)
    ids = [env.db.create(env.model, vals) for vals in values]
    return Created(ids) if isinstance(vals_list, dict) else ids


def button_approve(env: Env, force: bool = False) -> dict:
    db = env.db
    for order_id in _existing(env):
        order = db.records["purchase.order"][order_id]
        company = db.records["res.company"][order["company_id"]]
        allowed = (
            company["po_double_validation"] == "one_step"
            or (company["po_double_validation"] == "two_step" and order["amount_total"] < company["po_double_validation_amount"])
            or PURCHASE_MANAGER in db.groups.get(env.uid, set())
        )
        if not allowed:
            continue  # Odoo's own behaviour: no error, the order just stays 'to approve'
        values = {"state": "purchase", "date_approve": db.stamp()}
        if company["po_lock"] == "lock":
            values.update({"state": "done"} if db.version < 18 else {"locked": True})
        db.update("purchase.order", order_id, values, env.uid)
    return {}


def button_cancel(env: Env) -> None:
    orders = env.db.records["purchase.order"]
    locked = [orders[i]["name"] for i in _existing(env) if orders[i]["locked"] or orders[i]["state"] == "done"]
    if locked:
        raise OdooError("odoo.exceptions.UserError", f"Unable to cancel purchase order(s): {', '.join(locked)}. You must first unlock them.")
    for order_id in _existing(env):
        env.db.update("purchase.order", order_id, {"state": "cancel"}, env.uid)


def message_post(env: Env, *, body: str = "", subject: str | None = None, message_type: str = "notification", subtype_xmlid: str | None = None, **kwargs: Any) -> Created:
    db = env.db
    if len(env.ids) != 1:
        raise OdooError("builtins.ValueError", f"Expected singleton: {env.model}{tuple(env.ids)}", 500)
    (record_id,) = _existing(env)
    subtype = db.subtypes.get(subtype_xmlid or "mail.mt_note")
    if subtype is None:
        raise OdooError("builtins.ValueError", f"External ID not found in the system: {subtype_xmlid}", 500)
    # Plain text is escaped, as Odoo does for a body that is not Markup.
    values = {"model": env.model, "res_id": record_id, "body": f"<p>{html.escape(body)}</p>", "message_type": message_type, "subtype_id": subtype}
    return Created([db.create("mail.message", values)])


def _existing(env: Env) -> list[int]:
    missing = [i for i in env.ids if i not in env.db.records[env.model]]
    if missing:
        raise OdooError("odoo.exceptions.MissingError", f"Record does not exist or has been deleted.\n(Record: {env.model}({missing[0]},), User: {env.uid})", 404)
    return env.ids


# name -> (function, is an @api.model method, models it exists on; None = every model)
METHODS: dict[str, tuple[Callable[..., Any], bool, set[str] | None]] = {
    "read": (read, False, None),
    "search_read": (search_read, True, None),
    "search_count": (search_count, True, None),
    "search": (search, True, None),
    "write": (write, False, None),
    "create": (create, True, None),
    "button_approve": (button_approve, False, {"purchase.order"}),
    "button_cancel": (button_cancel, False, {"purchase.order"}),
    "message_post": (message_post, False, {"purchase.order"}),
}


def public_method(model: str, method: str) -> tuple[Callable[..., Any], bool] | None:
    entry = METHODS.get(method)
    if entry is None or (entry[2] is not None and model not in entry[2]):
        return None
    return entry[0], entry[1]


def run(db: OdooDb, model: str, method: str, ids: list[int], uid: int, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Call a public method as Odoo would after routing: access check, argument binding, then the method."""
    function, _ = public_method(model, method) or (None, None)
    if function is None:
        raise OdooError("builtins.AttributeError", f"The method '{method}' does not exist on the model '{model}'", 404)
    if model in METADATA_MODELS or model in SETTINGS_ADMIN_MODELS:
        db.seed_metadata()
    if model in db.denied_models:
        raise OdooError(
            "odoo.exceptions.AccessError",
            f"You are not allowed to access '{model}' records.\n\nContact your administrator to request access if necessary.",
            403,
        )
    env = Env(db, model, list(ids), uid)
    try:
        inspect.signature(function).bind(env, *args, **kwargs)
    except TypeError as error:
        raise OdooError("builtins.TypeError", str(error), 422) from None
    return function(env, *args, **kwargs)
