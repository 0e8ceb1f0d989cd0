"""Odoo's external API over HTTP: JSON-2 (Odoo 19+) or JSON-RPC (17, 18), chosen once; failures become Handoff's errors.

Sources (odoo/odoo, odoo/documentation):
- JSON-2: `addons/web/controllers/json2.py` and `content/developer/reference/external_api.rst` (19.0):
  `POST /json/2/<model>/<method>`, `Authorization: bearer <key>`, `X-Odoo-Database`, body = named args + `ids`,
  `context`; errors are real HTTP statuses with `{"name","message","arguments","context","debug"}`.
- JSON-RPC: `content/developer/reference/external_rpc_api.rst`, `odoo/service/common.py`, `odoo/http.py`
  (`JsonRPCDispatcher.handle_error`): errors come back as HTTP 200 `{"error":{"code":200,"message":"Odoo Server
  Error","data":<same object>}}`; `common.authenticate` answers `false` for a wrong login or key.
- Version: `GET /web/version` -> `{"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}` (19.0 migration
  notes); older servers answer `common.version` -> `{"server_version_info": [...], ...}`.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import aiohttp

from handoff.bot.core.errors import ErpRefused, ErpThrottled, ErpUnavailable, RecordNotFound

if TYPE_CHECKING:
    from .odoo import OdooSettings

log = logging.getLogger(__name__)

Api = Literal["json2", "jsonrpc"]
JSON2_SINCE = 19  # JSON-2 arrived in 19.0, which also deprecates /jsonrpc
USER_AGENT = "handoff-odoo-connector"


class OdooRpc:
    """One Odoo database as one API user sees it. Each call is made once: retrying is the caller's choice."""

    def __init__(self, settings: OdooSettings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
        self._api: Api | None = None if settings.api == "auto" else settings.api
        self._uid: int | None = None
        self._lock = asyncio.Lock()
        self._request_ids = itertools.count(1)

    async def call(self, model: str, method: str, ids: list[int] | None = None, **params: Any) -> Any:
        """Run `model.method` on `ids` (None for model-level methods) with named `params`; return Odoo's answer."""
        if await self.api() == "json2":
            return await self._json2(model, method, ids, params)
        uid = await self._authenticate()
        key = self._settings.api_key.get_secret_value()
        args = [self._settings.database, uid, key, model, method, [] if ids is None else [ids], params]
        try:
            return await self._jsonrpc("object", "execute_kw", args, what=f"{model}.{method}")
        except ErpRefused:
            # A refusal may be a key revoked since we authenticated: authenticating afresh next time costs one call.
            self._uid = None
            raise

    async def api(self) -> Api:
        """The API in use: the configured one, or the one the server's version calls for, detected once."""
        async with self._lock:
            if self._api is None:
                major = await self._web_version() or await self._common_version()
                self._api = "json2" if major >= JSON2_SINCE else "jsonrpc"
                log.info("odoo.api_detected", extra={"odoo_version": major, "api": self._api, "url": self._settings.url})
            return self._api

    async def _authenticate(self) -> int:
        async with self._lock:
            if self._uid is None:
                s = self._settings
                uid = await self._jsonrpc("common", "authenticate", [s.database, s.login, s.api_key.get_secret_value(), {}], what="common.authenticate")
                if not isinstance(uid, int) or isinstance(uid, bool):
                    raise ErpRefused(
                        f"Odoo rejected login {s.login!r} with the configured API key on database {s.database!r}. "
                        "Check HANDOFF_ODOO__LOGIN, HANDOFF_ODOO__DATABASE and HANDOFF_ODOO__API_KEY "
                        "(Odoo > Preferences > Account Security > New API Key)."
                    )
                self._uid = uid
            return self._uid

    async def _web_version(self) -> int | None:
        status, body, retry_after = await self._send("GET", "/web/version", None)
        if status == 429 or status >= 500:
            self._transient(status, retry_after, "GET /web/version")
        return _major(body.get("version_info")) if status == 200 and isinstance(body, dict) else None

    async def _common_version(self) -> int:
        info = await self._jsonrpc("common", "version", [], what="common.version")
        major = _major(info.get("server_version_info")) if isinstance(info, dict) else None
        if major is None:
            raise ErpRefused(
                f"Could not tell which Odoo version runs at {self._settings.url}: neither GET /web/version nor JSON-RPC "
                "common.version answered with one. Check HANDOFF_ODOO__URL, or set HANDOFF_ODOO__API to json2 (Odoo 19+) "
                "or jsonrpc (Odoo 17/18)."
            )
        return major

    async def _json2(self, model: str, method: str, ids: list[int] | None, params: dict[str, Any]) -> Any:
        s = self._settings
        headers = {"Authorization": f"bearer {s.api_key.get_secret_value()}", "X-Odoo-Database": s.database}
        body = params if ids is None else {"ids": ids, **params}
        path = f"/json/2/{model}/{method}"
        status, answer, retry_after = await self._send("POST", path, body, headers)
        if status == 200 and not isinstance(answer, _Text):
            return answer
        if status == 429 or (status >= 500 and not _is_odoo_error(answer)):
            self._transient(status, retry_after, f"POST {path}")
        if status == 401:
            raise ErpRefused(
                f"Odoo refused the API key for {s.login!r} ({_message(answer)}). Create a key for the API user "
                "(Odoo > Preferences > Account Security > New API Key) and set HANDOFF_ODOO__API_KEY."
            )
        if status == 404 and not _is_odoo_error(answer):
            raise ErpRefused(
                f"Odoo at {s.url} has no JSON-2 API (HTTP 404 on {path}); it needs Odoo 19 or later. "
                "Set HANDOFF_ODOO__API=jsonrpc (Odoo 17/18) or auto."
            )
        if not _is_odoo_error(answer):
            raise ErpRefused(f"Odoo answered HTTP {status} to {model}.{method} with no Odoo error: {_message(answer)}. Check HANDOFF_ODOO__URL points at Odoo itself.")
        self._refused(answer, f"{model}.{method}")

    async def _jsonrpc(self, service: str, method: str, args: list[Any], *, what: str) -> Any:
        envelope = {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args}, "id": next(self._request_ids)}
        status, answer, retry_after = await self._send("POST", "/jsonrpc", envelope)
        if status == 429 or status >= 500:
            self._transient(status, retry_after, f"{what} via /jsonrpc")
        error = answer.get("error") if isinstance(answer, dict) else None
        if status == 404 or isinstance(error, dict) and error.get("code") == 404:
            raise ErpRefused(
                f"Odoo at {self._settings.url} does not serve /jsonrpc (removed or disabled). "
                "Set HANDOFF_ODOO__API=json2 (Odoo 19+) or auto."
            )
        if status != 200 or not isinstance(answer, dict) or ("result" not in answer and not isinstance(error, dict)):
            raise ErpRefused(f"Odoo answered HTTP {status} with no JSON-RPC result to {what}. Check HANDOFF_ODOO__URL points at Odoo itself.")
        if isinstance(error, dict):
            self._refused(error.get("data") or {"message": error.get("message")}, what)
        return answer["result"]

    async def _send(self, verb: str, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any, str | None]:
        """One HTTP exchange: (status, parsed JSON or raw text, Retry-After). Never logs headers: they carry the key."""
        url = self._settings.url + path
        try:
            async with self._session.request(
                verb, url, json=body, headers={"User-Agent": USER_AGENT, **(headers or {})}, timeout=self._timeout
            ) as response:
                text = await response.text()
                status, retry_after = response.status, response.headers.get("Retry-After")
        except asyncio.TimeoutError as error:
            raise ErpUnavailable(
                f"Odoo at {self._settings.url} did not answer {verb} {path} within {self._settings.timeout_s:g}s. "
                "Check that Odoo is up, or raise HANDOFF_ODOO__TIMEOUT_S."
            ) from error
        except aiohttp.ClientError as error:
            raise ErpUnavailable(
                f"Odoo at {self._settings.url} is unreachable ({type(error).__name__}: {error}). "
                "Check HANDOFF_ODOO__URL and that Odoo is running."
            ) from error
        try:
            return status, json.loads(text), retry_after
        except ValueError:
            return status, _Text(text), retry_after

    def _transient(self, status: int, retry_after: str | None, what: str) -> NoReturn:
        hint = _retry_after(retry_after)
        if status == 429:
            # Odoo has no rate limiter of its own: a reverse proxy or odoo.sh answers this, with or without Retry-After.
            # Odoo is up and asks for a pause, as Dataverse's service protection does: the same ErpThrottled.
            raise ErpThrottled(f"Odoo answered HTTP 429 to {what}: something in front of it is throttling Handoff. Handoff "
                               "waits and retries; if this persists, check the rate limit of Odoo's proxy.", retry_after=hint)
        raise ErpUnavailable(
            f"Odoo answered HTTP {status} to {what}: it is down or overloaded. Handoff retries; if this persists, check Odoo's "
            "server and its proxy.",
            retry_after=hint,
        )

    def _refused(self, error: Any, what: str) -> NoReturn:
        """Odoo itself raised: a deterministic answer, so never retried. MissingError means the record is gone."""
        name, message = (error.get("name") or "", _message(error)) if isinstance(error, dict) else ("", str(error))
        login = self._settings.login
        log.warning("odoo.refused", extra={"call": what, "error_name": name})
        if name.endswith("MissingError"):
            raise RecordNotFound(f"Odoo says the record is gone ({message}). Nothing is left to approve; check the order in Odoo.")
        if name.endswith("AccessDenied"):
            raise ErpRefused(f"Odoo denied the API user {login!r} ({message}). Check HANDOFF_ODOO__LOGIN and HANDOFF_ODOO__API_KEY.")
        if name.endswith("AccessError"):
            raise ErpRefused(
                f"Odoo refused {what} to the API user {login!r}: {message} "
                "Give that user the access it needs (at least Purchase / User), then retry."
            )
        raise ErpRefused(f"Odoo refused {what}: {message} ({name or 'no error name'}). Fix the cause in Odoo or in Handoff's Odoo settings, then retry.")


class _Text(str):
    """A body that was not JSON: a proxy's error page, or not Odoo at all."""


def _is_odoo_error(answer: Any) -> bool:
    """True for the error object Odoo serialises itself, as opposed to a proxy's or a stranger's error page."""
    return isinstance(answer, dict) and isinstance(answer.get("name"), str) and "message" in answer


def _message(answer: Any) -> str:
    if isinstance(answer, dict) and answer.get("message"):
        return str(answer["message"]).strip()
    return str(answer).strip()[:200] or "no details"


def _major(version_info: Any) -> int | None:
    """Major version from `release.version_info`: (17, 0, 0, 'final', 0, '') on stable, ('saas~17', 2, ...) on SaaS."""
    if not isinstance(version_info, list) or not version_info:
        return None
    first = version_info[0]
    if isinstance(first, int) and not isinstance(first, bool):
        return first
    digits = str(first).rpartition("~")[2].partition(".")[0]
    return int(digits) if digits.isdigit() else None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header, given as seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
