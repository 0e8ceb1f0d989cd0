"""Teams adapter, read-back: find a card Handoff posted but never recorded, through Microsoft Graph.

The Bot Connector API has no read of a conversation's messages; Graph has, with resource-specific consent (RSC)
granted in the team or group chat (msteams-docs graph-api/rsc/resource-specific-consent.md):
- channels: `GET /teams/{team-id}/channels/{channel-id}/messages`, `ChannelMessage.Read.Group`; `$top` at most 50, no
  other query option (microsoft-graph-docs api-reference/v1.0/api/channel-list-messages.md);
- group chats: `GET /chats/{chat-id}/messages`, `ChatMessage.Read.Chat`; `$top` at most 50, `$orderby` and `$filter`
  on `lastModifiedDateTime` (`gt`/`lt`), descending only (api/chat-list-messages.md).
1:1 chats are not covered: RSC in personal scope is limited to `ChatMessageReadReceipt.Read.Chat` (same RSC page), and
the Bot Framework's `a:` conversation id is not a Graph chat id.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone

import aiohttp

from handoff.bot.core.errors import ChatError, ChatRateLimited
from handoff.cards import adaptive

from .teams_auth import TeamsSettings, TokenSource

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
PAGE_SIZE = 50  # the documented maximum $top of both list calls
PAGES = 5  # pages read before giving up on finding a lost card: the last 250 messages
_TIMEOUT = aiohttp.ClientTimeout(total=30)


class GraphCards:
    """Finds Handoff's own Adaptive Card by the outbox key hidden in it, in a channel or group chat's recent messages."""

    def __init__(self, settings: TeamsSettings) -> None:
        self.settings = settings
        self._tokens: dict[str, TokenSource] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def find(self, reference: dict, conversation: str, key: str, since: datetime) -> str | None:
        """The id of the message carrying `key` posted since `since` in `conversation`; None if Graph has none or can't say."""
        kind = (reference.get("conversation") or {}).get("conversationType")
        base = self.settings.graph_url.rstrip("/")
        if kind == "channel":
            team = reference.get("aadGroupId")
            if not team:
                log.warning("card.lookup_unavailable", extra={"conversation": conversation, "cause": "no team group id stored",
                                                              "fix": "Remove Handoff from that team and add it again."})
                return None
            # A channel thread's conversation id carries ";messageid=…"; the channel is the part before it.
            url = f"{base}/teams/{team}/channels/{conversation.split(';', 1)[0]}/messages"
            params = {"$top": str(PAGE_SIZE)}
        elif kind == "groupChat":
            url = f"{base}/chats/{conversation}/messages"
            stamp = since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            # $filter works only with $orderby on the same property (chat-list-messages.md, "Optional query parameters").
            params = {"$top": str(PAGE_SIZE), "$orderby": "lastModifiedDateTime desc", "$filter": f"lastModifiedDateTime gt {stamp}"}
        else:
            return None  # a 1:1 chat: no RSC permission reads it (module docstring)
        tenant = reference.get("tenantId") or self.settings.tenant_id or ""
        for _ in range(PAGES):
            page = await self._get(url, params, tenant, conversation)
            if page is None:
                return None
            for message in page.get("value") or []:
                if self._ours(message, key, since):
                    return str(message["id"])
            url, params = page.get("@odata.nextLink"), {}
            if not url:
                return None
        log.warning("card.lookup_incomplete", extra={"conversation": conversation, "pages": PAGES})
        return None

    def _ours(self, message: dict, key: str, since: datetime) -> bool:
        # chatMessage: `from.application.id` is the bot's app id, each attachment's `content` the card as a JSON string
        # (microsoft-graph-docs resources/chatmessage.md, chatmessageattachment.md; the bot-card example in chat-list-messages).
        sender = ((message.get("from") or {}).get("application") or {}).get("id")
        if sender != self.settings.app_id or message.get("deletedDateTime"):
            return False
        try:
            created = datetime.fromisoformat(str(message.get("createdDateTime")))
        except ValueError:
            return False
        if created < since:
            return False
        for attachment in message.get("attachments") or []:
            if attachment.get("contentType") != adaptive.CONTENT_TYPE:
                continue
            content = attachment.get("content")
            try:
                card = json.loads(content) if isinstance(content, str) else content
            except json.JSONDecodeError:
                continue
            if adaptive.card_key(card) == key:
                return True
        return False

    async def _get(self, url: str, params: dict, tenant: str, conversation: str) -> dict | None:
        try:
            token = await asyncio.to_thread(self._token_source(tenant).token)
        except ChatError as error:
            if not error.permanent:
                raise
            return self._refused(conversation, "token", str(error))
        try:
            async with self._http().get(url, params=params, headers={"Authorization": f"Bearer {token}"}) as response:
                body = await response.json(content_type=None)
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise ChatError(f"Microsoft Graph is unreachable reading {conversation} ({type(error).__name__}); Handoff will retry.") from error
        if status == 200 and isinstance(body, dict):
            return body
        # Graph errors: {"error": {"code", "message"}} (microsoft-graph-docs concepts/errors.md).
        code = ((body or {}).get("error") or {}).get("code") if isinstance(body, dict) else None
        if status == 429:
            seconds = float(retry_after) if (retry_after or "").isdigit() else 1.0
            raise ChatRateLimited(f"Microsoft Graph throttled Handoff reading {conversation}; retry after {seconds:g}s", seconds)
        if 400 <= status < 500:
            return self._refused(conversation, str(status), code)
        raise ChatError(f"Microsoft Graph answered {status} ({code or 'no error code'}) reading {conversation}; Handoff will retry.")

    def _refused(self, conversation: str, status: str, code: str | None) -> None:
        # Missing consent or access: asking again cannot help, and posting without the look-up is the old behaviour.
        log.warning("card.lookup_refused", extra={"conversation": conversation, "status": status, "code": code, "fix": (
            "Grant Handoff's resource-specific consent in that team or chat (install the app package built with "
            "--graph-read true) and let the tenant allow it; until then a crash mid-post can leave a second card.")})

    def _token_source(self, tenant: str) -> TokenSource:
        # App-only Graph tokens come from the tenant whose data is read, not from botframework.com.
        if tenant not in self._tokens:
            login = (self.settings.graph_login_url or self.settings.login_url).rstrip("/")
            self._tokens[tenant] = TokenSource(self.settings, url=f"{login}/{tenant}/oauth2/v2.0/token", scope=GRAPH_SCOPE)
        return self._tokens[tenant]

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        return self._session
