"""A local Odoo for tests and `handoff demo`: JSON-2 (19+) and JSON-RPC over real HTTP, faults on demand.

Wire shapes follow odoo/odoo and odoo/documentation (see handoff.connectors.odoo_rpc for the list):
- `/json/2/<model>/<method>` (`addons/web/controllers/json2.py`): bearer API key, named arguments plus `ids`;
  errors are HTTP statuses with `{"name","message","arguments","context","debug"}`, 401 `Invalid apikey`.
- `/jsonrpc` (`odoo/http.py`, `odoo/service/common.py`): `common.version`, `common.authenticate` (false on a bad
  login or key), `object.execute_kw`; errors are HTTP 200 with `{"code":200,"message":"Odoo Server Error","data":...}`.
- `GET /web/version` (19.0): `{"version_info": [...], "version": "19.0"}`.
- The webhook body is what `ir.actions.server._run_action_webhook` posts: `json.dumps(vals, sort_keys=True,
  default=str)` of `_model`, `_id`, `_action` and `read(fields, load=None)[0]`.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .odoo_db import Created, OdooDb, OdooError, public_method, run
from .odoo_seed import OdooSeeding

WEBHOOK_FIELDS = ("amount_total", "currency_id", "date_order", "name", "partner_id", "state", "user_id", "write_date")


class FakeOdoo(OdooSeeding):
    """One Odoo database of a given major `version` (17, 18 or 19), served by `app`, with one API user and key."""

    def __init__(
        self,
        *,
        version: int = 19,
        database: str = "handoff",
        api_login: str = "handoff-bot",
        api_key: str = "fake-odoo-api-key",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if version not in (17, 18, 19):
            raise ValueError(f"FakeOdoo speaks Odoo 17, 18 or 19, not {version}.")
        self.version, self.database, self.api_login, self.api_key = version, database, api_login, api_key
        self.db = OdooDb(version, clock or (lambda: datetime.now(timezone.utc)))
        self.api_uid = self.add_user(api_login, name="Handoff Bot")
        self.down = False
        self.calls: Counter[str] = Counter()  # "purchase.order.read", "common.authenticate", "web.version", ...
        self.requests: list[str] = []  # "POST /jsonrpc" for every request received, faults included
        self._faults: list[tuple[int, float | None]] = []
        self._stalls = 0
        self._method_faults: dict[str, int] = {}
        self._method_fault: tuple[int, float | None] = (503, None)
        self._release = asyncio.Event()
        self.app = web.Application(middlewares=[self._inject_faults])
        self.app.on_shutdown.append(self._release_stalled)
        self.app.router.add_post("/jsonrpc", self._jsonrpc)
        if version >= 19:
            self.app.router.add_get("/web/version", self._web_version)
            # Odoo routes every verb here and answers 405 itself, so /json/<path> cannot take over.
            self.app.router.add_route("*", "/json/2/{model}/{method}", self._json2)

    def fail_next(self, count: int = 1, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next `count` requests with `status` (and Retry-After), as a proxy or a busy server would."""
        self._faults.extend([(status, retry_after)] * count)

    def fail_method(self, method: str, count: int = 1, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next `count` JSON-2 calls of `method` (e.g. "button_approve") with `status` (and Retry-After);
        other calls pass."""
        self._method_faults[method] = self._method_faults.get(method, 0) + count
        self._method_fault = (status, retry_after)

    def stall_next(self, count: int = 1) -> None:
        """Leave the next `count` requests unanswered until the client gives up, as a hung Odoo worker would."""
        self._stalls += count

    def webhook_body(self, order_id: int, fields: Sequence[str] = WEBHOOK_FIELDS, action: str = "Send Webhook Notification", action_id: int = 87) -> bytes:
        """Exactly the bytes an automation rule's webhook action posts for this purchase order."""
        vals: dict[str, Any] = {"_model": "purchase.order", "_id": order_id, "_action": f"{action}(#{action_id})"}
        if fields:
            vals.update(self.db.read("purchase.order", [order_id], list(fields), load=None)[0])
        return json.dumps(vals, sort_keys=True, default=str).encode()

    @web.middleware
    async def _inject_faults(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        if self.down:
            return web.Response(status=503, text="503 Service Unavailable")
        if self._stalls:
            self._stalls -= 1
            await self._release.wait()
            return web.Response(status=504, text="504 Gateway Timeout")
        method = request.match_info.get("method", "")
        if self._method_faults.get(method):
            self._method_faults[method] -= 1
            return _fault(*self._method_fault)
        if self._faults:
            return _fault(*self._faults.pop(0))
        return await handler(request)

    async def _release_stalled(self, app: web.Application) -> None:
        self._release.set()

    def _version_info(self) -> list[Any]:
        return [self.version, 0, 0, "final", 0, ""]

    async def _web_version(self, request: web.Request) -> web.Response:
        self.calls["web.version"] += 1
        return web.json_response({"version_info": self._version_info(), "version": f"{self.version}.0"})

    async def _json2(self, request: web.Request) -> web.Response:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key != self.api_key:
            return _json2_error(OdooError("werkzeug.exceptions.Unauthorized", "Invalid apikey", 401))
        database = request.headers.get("X-Odoo-Database")
        if database is not None and database != self.database:
            # [UNVERIFIED] how Odoo words an unknown X-Odoo-Database; it is a 404 either way.
            return _json2_error(OdooError("werkzeug.exceptions.NotFound", f"database {database!r} not found", 404))
        if request.method != "POST":
            return _json2_error(OdooError("werkzeug.exceptions.MethodNotAllowed", "The method is not allowed for the requested URL.", 405))
        try:
            params = json.loads(await request.read() or b"{}")
        except ValueError as error:
            return _json2_error(OdooError("werkzeug.exceptions.BadRequest", f"could not parse the body as json: {error}", 400))
        if not isinstance(params, dict):
            return _json2_error(OdooError("werkzeug.exceptions.BadRequest", "could not parse the body, expecting a json object", 400))
        model, method = request.match_info["model"], request.match_info["method"]
        if model not in self.db.schema:
            return _json2_error(OdooError("werkzeug.exceptions.NotFound", f"the model {model!r} does not exist", 404))
        found = public_method(model, method)
        if found is None:
            return _json2_error(OdooError("werkzeug.exceptions.NotFound", f"The method '{method}' does not exist on the model '{model}'", 404))
        ids = params.pop("ids", None) or []
        params.pop("context", None)
        if found[1] and ids:
            return _json2_error(OdooError("werkzeug.exceptions.UnprocessableEntity", f"cannot call {model}.{method} with ids", 422))
        self.calls[f"{model}.{method}"] += 1
        try:
            result = run(self.db, model, method, ids, self.api_uid, [], params)
        except OdooError as error:
            return _json2_error(error)
        return web.json_response(list(result) if isinstance(result, Created) else result)

    async def _jsonrpc(self, request: web.Request) -> web.Response:
        try:
            envelope = json.loads(await request.read())
            params = envelope["params"]
            service, method, args = params["service"], params["method"], list(params.get("args") or [])
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="400 Bad Request: expected a JSON-RPC 2.0 call with params.service, method and args")
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": envelope.get("id")}
        try:
            answer["result"] = self._dispatch_rpc(service, method, args)
        except OdooError as error:
            answer["error"] = {"code": 200, "message": "Odoo Server Error", "data": _serialized(error)}
        return web.json_response(answer)

    def _dispatch_rpc(self, service: str, method: str, args: list[Any]) -> Any:
        if service == "common" and method == "version":
            self.calls["common.version"] += 1
            return {"server_version": f"{self.version}.0", "server_version_info": self._version_info(), "server_serie": f"{self.version}.0", "protocol_version": 1}
        if service == "common" and method in ("authenticate", "login"):
            self.calls[f"common.{method}"] += 1
            database, login, key = (args + [None] * 3)[:3]
            self._check_database(database)
            uid = self.db.find("res.users", login=login)
            return uid if uid == self.api_uid and key == self.api_key else False
        if service == "object" and method == "execute_kw" and len(args) >= 6:
            database, uid, key, model, name, positional = args[:6]
            kwargs = args[6] if len(args) > 6 and isinstance(args[6], dict) else {}
            self._check_database(database)
            if uid != self.api_uid or key != self.api_key:
                raise OdooError("odoo.exceptions.AccessDenied", "Access Denied", 403)
            if model not in self.db.schema:
                raise OdooError("builtins.KeyError", repr(model), 500)
            found = public_method(model, name)
            is_model_method = bool(found and found[1])
            ids, rest = ([], positional) if is_model_method or not positional else (positional[0], positional[1:])
            self.calls[f"{model}.{name}"] += 1
            result = run(self.db, model, name, ids, uid, rest, kwargs)
            return result[0] if isinstance(result, Created) else result
        raise OdooError("builtins.Exception", f"Method not found: {method}", 500)

    def _check_database(self, database: Any) -> None:
        if database != self.database:
            # What opening a registry for an unknown database raises (psycopg2), wrapped like any server error.
            raise OdooError("psycopg2.OperationalError", f'connection to server failed: FATAL:  database "{database}" does not exist', 500)


def _fault(status: int, retry_after: float | None) -> web.Response:
    """What a proxy or a busy server in front of Odoo answers: a status page, not an Odoo error."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return web.Response(status=status, text=f"{status} {HTTPStatus(status).phrase}", headers=headers)


def _serialized(error: OdooError) -> dict[str, Any]:
    """`odoo.http.serialize_exception`; werkzeug exceptions carry (description, code) as their arguments."""
    arguments = [error.message, error.status] if error.name.startswith("werkzeug.") else [error.message]
    debug = f"Traceback (most recent call last):\n  File \"fake_odoo\", in dispatch\n{error.name}: {error.message}\n"
    return {"name": error.name, "message": error.message, "arguments": arguments, "context": {}, "debug": debug}


def _json2_error(error: OdooError) -> web.Response:
    return web.json_response(_serialized(error), status=error.status)
