"""The Dataverse Web API over HTTP: OData headers, bearer tokens, retries, and errors turned into ours."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from urllib.parse import quote

import aiohttp
from yarl import URL

from handoff.bot.core.errors import ErpConflict, ErpError, ErpRefused, ErpThrottled, ErpUnavailable, RecordNotFound
from handoff.bot.core.pacing import Budget
from handoff.bot.core.retry import Backoff, with_retries

from .dataverse_auth import TokenProvider

log = logging.getLogger(__name__)

API_PATH = "/api/data/v9.2"
# https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
ODATA_HEADERS = {"OData-MaxVersion": "4.0", "OData-Version": "4.0", "Accept": "application/json"}
# Labels of choices and names of lookups, as `<column>@OData.Community.Display.V1.FormattedValue`.
FORMATTED = "OData.Community.Display.V1.FormattedValue"


class WebApi:
    """One environment's Web API. Every request is retried on throttling and outages, as api-limits.md asks, and
    waits for its slot in the application user's budget when one is given."""

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        tokens: TokenProvider,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[None]],
        budget: Budget | None = None,
    ) -> None:
        self.base_url = base_url
        self._session = session
        self._tokens = tokens
        self._backoff = backoff
        self._sleep = sleep
        self._budget = budget

    async def get(self, path: str, params: Mapping[str, str], prefer: str | None = None) -> dict:
        headers = {"Prefer": prefer} if prefer else {}
        body = await self._send("GET", path, params=params, headers=headers)
        assert body is not None, "a 200 from a GET carries a body"
        return body

    async def not_modified(self, path: str, params: Mapping[str, str], etag: str) -> bool:
        """A conditional GET: True when the row still has `etag` (304), False when Dataverse sends it anew (200)."""
        # perform-conditional-operations-using-web-api.md, "Conditional retrievals": If-None-Match with the last ETag.
        return await self._send("GET", path, params=params, headers={"If-None-Match": etag}) is None

    async def patch(self, path: str, values: dict, if_match: str) -> None:
        """Update columns; `If-Match` makes a changed record answer 412, never a silent overwrite."""
        await self._send("PATCH", path, payload=values, headers={"If-Match": if_match})

    async def post(self, path: str, values: dict) -> None:
        await self._send("POST", path, payload=values)

    async def _send(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    payload: dict | None = None, headers: Mapping[str, str] | None = None) -> dict | None:
        url = URL(f"{self.base_url}{API_PATH}/{path}{_query(params)}", encoded=True)
        return await with_retries(
            lambda: self._once(method, url, payload, headers or {}),
            what=f"Dataverse {method} {path}", backoff=self._backoff, sleep=self._sleep,
        )

    async def _once(self, method: str, url: URL, payload: dict | None, extra: Mapping[str, str]) -> dict | None:
        status, raw, retry_after = await self._request(method, url, payload, extra)
        if status == 401:
            # A cached token Dataverse no longer takes (revoked, or expired early) is dropped and fetched anew, once.
            self._tokens.forget()
            status, raw, retry_after = await self._request(method, url, payload, extra)
        if status == 304:
            return None
        if status < 300:
            try:
                return json.loads(raw, parse_float=Decimal) if raw else None
            except ValueError as error:  # a proxy or gateway page in front of the environment
                raise ErpUnavailable(f"Dataverse answered {method} {url.path} with a body that is not JSON ({error}).") from error
        log.warning("dataverse.http_error", extra={"method": method, "path": url.path, "status": status})
        raise _error(status, _error_message(raw), retry_after, f"{method} {url.path}")

    async def _request(self, method: str, url: URL, payload: dict | None, extra: Mapping[str, str]) -> tuple[int, bytes, str | None]:
        if self._budget is not None:
            # Every request counts against the application user's limit, whoever asks. The wait comes before the token,
            # so a token is never fetched only to age while a spent budget refills.
            await self._budget.acquire()
        headers = {**ODATA_HEADERS, **extra, "Authorization": f"Bearer {await self._tokens.token()}"}
        try:
            async with self._session.request(method, url, json=payload, headers=headers) as response:
                return response.status, await response.read(), response.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise ErpUnavailable(f"Dataverse is unreachable at {self.base_url} ({error or type(error).__name__}).") from error


def _query(params: Mapping[str, str] | None) -> str:
    # Spaces must travel as %20: a `+` in an OData $filter is not a space to every server.
    if not params:
        return ""
    return "?" + "&".join(f"{quote(key, safe='$')}={quote(value, safe='(),$')}" for key, value in params.items())


def _error_message(raw: bytes) -> str:
    """The Web API's own words: `{"error": {"code": "0x...", "message": "..."}}`."""
    try:
        error = json.loads(raw)["error"]
        return f"{error.get('code') or 'no code'}: {error.get('message', '')}"
    except (ValueError, KeyError, TypeError):
        return raw[:200].decode("utf-8", "replace") or "no details"


def _error(status: int, detail: str, retry_after: str | None, what: str) -> ErpError:
    if status == 412:
        return ErpConflict(f"The Dataverse record changed since Handoff read it ({detail}); re-read it and decide again.")
    if status == 404:
        return RecordNotFound(f"Dataverse has no such record, or the application user cannot see it ({what}: {detail}).")
    if status == 401:
        return ErpRefused(
            f"Dataverse did not accept Handoff's token ({what}: {detail}). The token must be for this environment: check "
            "that HANDOFF_DATAVERSE__URL is the environment's URL and HANDOFF_DATAVERSE__TENANT_ID its tenant."
        )
    if status == 403:
        return ErpRefused(
            f"Dataverse refused Handoff's application user ({what}: {detail}). In the Power Platform admin center "
            "(Environments > Settings > Users + permissions > Application users), add the app registration as an "
            "application user and give it a security role that can read and write the mapped tables and notes."
        )
    if status == 429:
        # Service protection limits answer 429 with Retry-After in seconds (api-limits.md).
        return ErpThrottled(f"Dataverse is throttling Handoff ({status}: {detail}).", retry_after=_seconds(retry_after))
    if status >= 500:
        return ErpUnavailable(f"Dataverse is unavailable ({status}: {detail}).", retry_after=_seconds(retry_after))
    return ErpRefused(f"Dataverse rejected {what} ({status}: {detail}). Check the table mapping in the Dataverse settings.")


def _seconds(retry_after: str | None) -> float | None:
    try:
        return float(retry_after) if retry_after is not None else None
    except ValueError:
        return None
