"""A local Microsoft Graph, the two chatMessage reads a bot granted resource-specific consent may make, over the
messages a FakeBotConnector received; app-only tokens come from a FakeEntra.

Shapes and limits: microsoft-graph-docs `api-reference/v1.0/api/channel-list-messages.md` (top-level messages only,
`$top` default 20, at most 50, no other query option), `api/chat-list-messages.md` (`$top` at most 50; `$orderby`
lastModifiedDateTime desc with `$filter` lastModifiedDateTime gt/lt, the filter ignored without that order),
`resources/chatmessage.md`, `resources/chatmessageattachment.md` (a card's `content` is its JSON as a string; a bot's
message is `from.application` with `applicationIdentityType` "bot"), `concepts/errors.md` (error body and codes).
Message ids are the connector's activity ids: [UNVERIFIED] that Teams gives a message one id on both APIs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from .botconnector import FakeBotConnector
from .entra import FakeEntra

AUDIENCE = "https://graph.microsoft.com"
MAX_TOP = 50
CHANNEL_DEFAULT_TOP = 20
_FILTER = re.compile(r"^lastModifiedDateTime (gt|lt) (\S+)$")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class FakeGraph:
    """Graph over one connector's conversations; only channels and group chats given `consent` can be read."""

    connector: FakeBotConnector
    entra: FakeEntra
    app_name: str = "Handoff"
    reads: list[tuple[str, dict]] = field(default_factory=list)
    # Answers (status, Retry-After or None) given to the next reads, before any real one: throttling, outages.
    failures: list[tuple[int, str | None]] = field(default_factory=list)
    _teams: dict[str, str] = field(default_factory=dict)  # channel id -> team (AAD group) id
    _chats: set[str] = field(default_factory=set)

    def consent(self, conversation: str, team: str | None = None) -> None:
        """RSC granted at install: `ChannelMessage.Read.Group` in `team` (a channel of it), or `ChatMessage.Read.Chat`."""
        if team:
            self._teams[conversation] = team
        else:
            self._chats.add(conversation)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1.0/teams/{team}/channels/{channel}/messages", self._channel_messages)
        app.router.add_get("/v1.0/chats/{chat}/messages", self._chat_messages)
        return app

    # ---- requests

    async def _channel_messages(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        team, channel = request.match_info["team"], request.match_info["channel"]
        if self._teams.get(channel) != team:
            return _error(403, "accessDenied", "The caller doesn't have permission to perform the action.")
        # "Retrieve the list of messages (without the replies) in a channel": replies are not listed.
        messages = [self._message(a, channel_identity={"teamId": team, "channelId": channel})
                    for a in self.connector.activities.get(channel, []) if not a.get("replyToId")]
        messages.sort(key=lambda m: m["createdDateTime"], reverse=True)
        return self._page(request, messages, CHANNEL_DEFAULT_TOP)

    async def _chat_messages(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        chat = request.match_info["chat"]
        if chat not in self._chats:
            return _error(403, "accessDenied", "The caller doesn't have permission to perform the action.")
        messages = [self._message(a, chat_id=chat) for a in self.connector.activities.get(chat, [])]
        messages.sort(key=lambda m: m["lastModifiedDateTime"], reverse=True)
        wanted = _FILTER.match(request.query.get("$filter", ""))
        if wanted and request.query.get("$orderby") == "lastModifiedDateTime desc":
            op, text = wanted.groups()
            try:
                bound = datetime.fromisoformat(text)
            except ValueError:
                return _error(400, "invalidRequest", f"Invalid filter clause: {text!r} is not a dateTimeOffset.")
            modified = {m["id"]: datetime.fromisoformat(m["lastModifiedDateTime"]) for m in messages}
            messages = [m for m in messages if (modified[m["id"]] > bound if op == "gt" else modified[m["id"]] < bound)]
        return self._page(request, messages, MAX_TOP)

    def _refused(self, request: web.Request) -> web.Response | None:
        self.reads.append((request.path, dict(request.query)))
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        issued = self.entra.introspect(token) if scheme == "Bearer" else None
        if issued is None or issued.expires_at <= self.entra.clock.now():
            return _error(401, "unauthenticated", "Access token is missing, invalid or expired.")
        if issued.audience != AUDIENCE or issued.client_id != self.connector.app_id:
            return _error(401, "unauthenticated", f"The token is for {issued.audience}, app {issued.client_id}.")
        if self.failures:
            status, retry_after = self.failures.pop(0)
            code = "activityLimitReached" if status == 429 else "serviceNotAvailable"
            response = _error(status, code, "Try the request again after a delay.")
            if retry_after:
                response.headers["Retry-After"] = retry_after
            return response
        return None

    def _page(self, request: web.Request, messages: list[dict], default_top: int) -> web.Response:
        try:
            top = int(request.query.get("$top", default_top))
            skip = int(request.query.get("$skiptoken", 0))
        except ValueError:
            return _error(400, "invalidRequest", "$top and $skiptoken must be integers.")
        if not 1 <= top <= MAX_TOP:
            return _error(400, "invalidRequest", f"$top must be between 1 and {MAX_TOP}.")
        body: dict = {"@odata.context": f"{request.url.origin()}/v1.0/$metadata#messages", "value": messages[skip:skip + top]}
        if skip + top < len(messages):
            body["@odata.nextLink"] = str(request.url.update_query({"$skiptoken": str(skip + top)}))
        return web.json_response(body)

    # ---- what Graph shows of an activity the connector received

    def _message(self, activity: dict, chat_id: str | None = None, channel_identity: dict | None = None) -> dict:
        sent = self.connector.sent_at[activity["id"]]
        modified = self.connector.updated_at.get(activity["id"], sent)
        attachments = [{"id": f"{activity['id']}-{n}", "contentType": a.get("contentType"), "contentUrl": None,
                        "content": json.dumps(a.get("content")), "name": None, "thumbnailUrl": None}
                       for n, a in enumerate(activity.get("attachments") or [])]
        body = ("".join(f'<attachment id="{a["id"]}"></attachment>' for a in attachments) if attachments
                else activity.get("text") or "")
        return {
            "id": activity["id"], "replyToId": activity.get("replyToId"), "etag": activity["id"], "messageType": "message",
            "createdDateTime": _stamp(sent), "lastModifiedDateTime": _stamp(modified), "lastEditedDateTime": None,
            "deletedDateTime": None, "subject": None, "summary": None, "chatId": chat_id, "importance": "normal",
            "locale": "en-us", "webUrl": None, "channelIdentity": channel_identity, "policyViolation": None, "eventDetail": None,
            "from": {"application": {"id": self.connector.app_id, "displayName": self.app_name, "applicationIdentityType": "bot"},
                     "device": None, "user": None},
            "body": {"contentType": "html", "content": body},
            "attachments": attachments, "mentions": [], "reactions": [],
        }
