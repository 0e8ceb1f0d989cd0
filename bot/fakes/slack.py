"""A local Slack: the Web API methods Handoff calls, served by aiohttp, and a signer that sends what Slack sends."""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import web
from handoff.bot.core.ports import Clock, SystemClock

from .ratelimit import Limit, SlidingWindow
from .slack_payloads import (
    SlackApiError,
    arguments,
    blocks_arg,
    cursor_arg,
    is_true,
    metadata_arg,
    next_cursor,
    ts_arg,
    view_arg,
)
from .slack_signer import SlackSigner, Workspace

log = logging.getLogger(__name__)

__all__ = ["FakeMessage", "FakeSlack", "Limit", "RateLimits", "SlackSigner", "Workspace", "TIERS"]

# https://docs.slack.dev/apis/web-api/rate-limits: tiers are "N+ per minute", per method, per workspace, per app.
TIERS = {1: Limit(1, 60), 2: Limit(20, 60), 3: Limit(50, 60), 4: Limit(100, 60)}
# https://docs.slack.dev/changelog/2018-04-truncating-really-long-messages: longer text is cut, with a warning.
TEXT_LIMIT = 40_000
# views.open error doc (slack_kit priv/docs/methods/views.open.json): 'expected format … "132456.7890123.abcdef"'.
_TRIGGER_ID = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")


@dataclass(frozen=True)
class RateLimits:
    """Which limits the fake enforces; the default enforces none, so tests opt in to 429s."""

    methods: dict[str, Limit] = field(default_factory=dict)
    # chat.postMessage's special limit: "generally allows posting one message per second per channel".
    post_per_channel: Limit | None = None


@dataclass
class FakeMessage:
    """A message as the fake keeps it; `updates` holds every earlier version, oldest first."""

    channel: str
    ts: str
    text: str
    blocks: list[dict]
    thread_ts: str | None = None
    reply_broadcast: bool = False
    updates: list[dict] = field(default_factory=list)
    metadata: dict | None = None

    def wire(self, workspace: Workspace, with_metadata: bool = False) -> dict:
        """The `message` object Slack returns (chat.postMessage docs example); metadata only when asked for."""
        body = {"type": "message", "subtype": "bot_message", "text": self.text, "ts": self.ts, "bot_id": workspace.bot_id,
                "app_id": workspace.app_id, "user": workspace.bot_user_id, "team": workspace.team_id}
        if self.blocks:
            body["blocks"] = self.blocks
        if self.thread_ts:
            body["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata:
            body["metadata"] = self.metadata
        return body


class FakeSlack:
    """Slack's Web API at `POST /api/<method>`; state stays inspectable for tests and the demo."""

    def __init__(self, token: str = "xoxb-fake-token", *, workspace: Workspace | None = None,
                 clock: Clock | None = None, rate_limits: RateLimits | None = None) -> None:
        self.token = token
        self.workspace = workspace or Workspace()
        self.clock = clock or SystemClock()
        limits = rate_limits or RateLimits()
        self._method_windows = {m: SlidingWindow(limit, self.clock) for m, limit in limits.methods.items()}
        self._post_window = SlidingWindow(limits.post_per_channel, self.clock) if limits.post_per_channel else None
        self.channel_names: dict[str, str] = {}
        self.members: dict[str, set[str]] = {}  # channel id -> its members, for channels a test gives members to
        self.users: dict[str, str] = {}
        self.dms: dict[str, str] = {}
        self.messages: dict[str, list[FakeMessage]] = {}
        self.calls: list[tuple[str, dict]] = []
        self.ephemerals: list[dict] = []
        self.views: list[dict] = []
        self.rate_limited_count = 0
        self._last_ts = 0
        self._used_triggers: set[str] = set()
        self._view_ids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_post("/api/{method}", self._handle)
        # Read methods may come as GET with query parameters, as slack_sdk sends conversations.history.
        self.app.router.add_get("/api/{method}", self._handle)

    def add_channel(self, channel_id: str, name: str) -> None:
        """A channel the bot is in; unknown channels answer `channel_not_found`."""
        self.channel_names[channel_id] = name
        self.messages.setdefault(channel_id, [])

    def set_members(self, channel_id: str, user_ids: set[str]) -> None:
        """Who is in a channel (or DM); one never given members has everyone in the workspace."""
        self.members[channel_id] = set(user_ids)

    def add_user(self, user_id: str, name: str) -> None:
        """A member of the workspace; unknown users answer `user_not_found`."""
        self.users[user_id] = name

    def message(self, channel: str, ts: str) -> FakeMessage | None:
        """The message with that key, or None."""
        return next((m for m in self.messages.get(channel, []) if m.ts == ts), None)

    def thread_replies(self, channel: str, ts: str) -> list[FakeMessage]:
        """The replies in the thread under the message `ts`, oldest first."""
        return [m for m in self.messages.get(channel, []) if m.thread_ts == ts]

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            args = await arguments(request)
            self._authenticate(request, args)
            args.pop("token", None)
            self.calls.append((method, args))
            self._check_rate(method, args)
            handler = self._methods().get(method)
            if handler is None:
                raise SlackApiError("unknown_method", req_method=method)  # [UNVERIFIED] Slack's answer for an unknown method
            body = handler(args)
        except SlackApiError as error:
            log.info("fake_slack.refused", extra={"method": method, "error": error.body["error"]})
            return web.json_response(error.body, status=error.status, headers=error.headers)
        return web.json_response({"ok": True, **body})

    def _methods(self):
        return {"auth.test": self._auth_test, "chat.postMessage": self._post_message, "chat.update": self._update,
                "chat.postEphemeral": self._post_ephemeral, "conversations.open": self._open,
                "conversations.history": self._history,
                "views.open": self._views_open, "views.update": self._views_update}

    def _authenticate(self, request: web.Request, args: dict) -> None:
        # Bearer header preferred; a `token` form field is the documented alternative (chat.postMessage docs, "token").
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else args.get("token")
        if not token:
            raise SlackApiError("not_authed")
        if token != self.token:
            raise SlackApiError("invalid_auth")

    def _check_rate(self, method: str, args: dict) -> None:
        waits = []
        if method in self._method_windows:
            waits.append(self._method_windows[method].retry_after(method))
        if method == "chat.postMessage" and self._post_window is not None:
            try:
                channel = self._channel(args)
            except SlackApiError:
                channel = str(args.get("channel", ""))
            waits.append(self._post_window.retry_after(channel))
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            self.rate_limited_count += 1
            # Same answer as python-slack-sdk's own mock server (tests/slack_sdk/web/mock_web_api_handler.py).
            raise SlackApiError("ratelimited", status=429, headers={"Retry-After": str(wait)})

    def _next_ts(self) -> str:
        # Slack-shaped "1718364000.000100": seconds and microseconds, unique and increasing within the fake.
        micros = max(int(self.clock.now().timestamp() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _channel(self, args: dict) -> str:
        wanted = str(args.get("channel") or "")
        if wanted in self.messages:
            return wanted
        if wanted in self.users:  # posting to a user id lands in the app's DM with them
            return self._dm(wanted)[0]
        by_name = {name: cid for cid, name in self.channel_names.items()}
        if wanted.lstrip("#") in by_name:
            return by_name[wanted.lstrip("#")]
        raise SlackApiError("channel_not_found")

    def _dm(self, users: str) -> tuple[str, bool]:
        """The DM (or group DM, for comma-separated ids) with `users`, stable across calls; and whether it existed."""
        already = users in self.dms
        if not already:
            prefix = "G" if "," in users else "D"
            self.dms[users] = prefix + hashlib.sha1(users.encode()).hexdigest()[:10].upper()
            self.messages[self.dms[users]] = []
        return self.dms[users], already

    def _auth_test(self, args: dict) -> dict:
        ws = self.workspace
        return {"url": f"https://{ws.domain}.slack.com/", "team": ws.team_name, "user": ws.bot_user_name,
                "team_id": ws.team_id, "user_id": ws.bot_user_id, "bot_id": ws.bot_id, "is_enterprise_install": False}

    def _content(self, args: dict) -> tuple[str, list[dict], dict]:
        blocks = blocks_arg(args.get("blocks"))
        text = str(args.get("text") or "")
        if not text and not blocks:
            raise SlackApiError("no_text")
        extra = {}
        if len(text) > TEXT_LIMIT:
            text = text[:TEXT_LIMIT]
            extra = {"warning": "message_truncated", "response_metadata": {"warnings": ["message_truncated"], "messages": [
                "[WARN] Your message was truncated but still posted. The `text` field accepts up to 40,000 characters."]}}
        return text, blocks, extra

    def _post_message(self, args: dict) -> dict:
        channel = self._channel(args)
        text, blocks, extra = self._content(args)
        # Slack documents no error for an unknown thread_ts, so the fake files the reply under it regardless.
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        metadata = metadata_arg(args.get("metadata"))
        message = FakeMessage(channel, self._next_ts(), text, blocks, thread_ts, is_true(args.get("reply_broadcast")),
                              metadata=metadata)
        self.messages[channel].append(message)
        return {"channel": channel, "ts": message.ts, "message": message.wire(self.workspace), **extra}

    def _update(self, args: dict) -> dict:
        channel = self._channel(args)
        message = self.message(channel, str(args.get("ts") or ""))
        if message is None:
            raise SlackApiError("message_not_found")
        text, blocks, extra = self._content(args)
        message.updates.append({"text": message.text, "blocks": message.blocks})
        message.text, message.blocks = text, blocks
        return {"channel": channel, "ts": message.ts, "text": text, "message": message.wire(self.workspace), **extra}

    def _history(self, args: dict) -> dict:
        """conversations.history: top-level messages in (oldest, latest), newest first, `limit` per page.

        Arguments and errors: the method's reference (slack_kit priv/docs/methods/conversations.history.json); the
        answer's fields: @slack/web-api ConversationsHistoryResponse (messages, has_more, pin_count, response_metadata).
        """
        channel = str(args.get("channel") or "")
        if channel not in self.messages:  # a conversation id only: unlike chat.postMessage, no names or user ids
            raise SlackApiError("channel_not_found")
        oldest = ts_arg(args.get("oldest"), "invalid_ts_oldest", Decimal(0))
        latest = ts_arg(args.get("latest"), "invalid_ts_latest", Decimal("Infinity"))
        before = cursor_arg(args.get("cursor"))
        inclusive = is_true(args.get("inclusive"))
        try:
            limit = min(int(args.get("limit") or 100), 999)
        except ValueError:
            raise SlackApiError("invalid_arguments") from None

        def within(ts: Decimal) -> bool:
            return ts < before and ((oldest <= ts <= latest) if inclusive else (oldest < ts < latest))

        # Thread replies live under their parent (conversations.replies), unless broadcast to the channel.
        found = [m for m in self.messages[channel] if (m.thread_ts is None or m.reply_broadcast) and within(Decimal(m.ts))]
        found.sort(key=lambda m: Decimal(m.ts), reverse=True)
        page, more = found[:limit], len(found) > limit
        with_metadata = is_true(args.get("include_all_metadata"))
        body = {"messages": [m.wire(self.workspace, with_metadata) for m in page], "has_more": more, "pin_count": 0}
        if more:
            body["response_metadata"] = {"next_cursor": next_cursor(page[-1].ts)}
        return body

    def _post_ephemeral(self, args: dict) -> dict:
        channel = self._channel(args)
        user = str(args.get("user") or "")
        if user not in self.users:
            raise SlackApiError("user_not_found")
        if not self._in_channel(channel, user):
            # "user_not_in_channel: Cannot post user messages to a channel they are not in." (the method's errors)
            raise SlackApiError("user_not_in_channel")
        text, blocks, _ = self._content(args)
        ts = self._next_ts()
        self.ephemerals.append({"channel": channel, "user": user, "text": text, "blocks": blocks,
                                "thread_ts": args.get("thread_ts"), "message_ts": ts})
        return {"message_ts": ts}

    def _in_channel(self, channel: str, user: str) -> bool:
        # Membership is checked where a test set it: several tests let one person click a card in another's DM.
        return channel not in self.members or user in self.members[channel]

    def _open(self, args: dict) -> dict:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            raise SlackApiError("users_list_not_supplied")
        if any(u not in self.users for u in users):
            raise SlackApiError("user_not_found")
        channel, already = self._dm(",".join(sorted(users)))
        return {"no_op": True, "already_open": True, "channel": {"id": channel}} if already else {"channel": {"id": channel}}

    def _views_open(self, args: dict) -> dict:
        trigger = str(args.get("trigger_id") or "")
        if not _TRIGGER_ID.match(trigger):
            raise SlackApiError("invalid_trigger_id")
        if trigger in self._used_triggers:
            raise SlackApiError("exchanged_trigger_id")
        view = view_arg(args.get("view"))
        self._used_triggers.add(trigger)
        view_id = f"V{next(self._view_ids):08d}"
        opened = {"id": view_id, "team_id": self.workspace.team_id, "state": {"values": {}}, "hash": self._hash(),
                  "private_metadata": "", "callback_id": "", "clear_on_close": False, "notify_on_close": False,
                  "root_view_id": view_id, "previous_view_id": None, "app_id": self.workspace.app_id, "external_id": "",
                  "app_installed_team_id": self.workspace.team_id, "bot_id": self.workspace.bot_id, **view}
        self.views.append({"trigger_id": trigger, "view": opened})
        return {"view": opened}

    def _views_update(self, args: dict) -> dict:
        wanted = args.get("view_id") or args.get("external_id")
        key = "id" if args.get("view_id") else "external_id"
        found = next((v for v in self.views if wanted and v["view"].get(key) == wanted), None)
        if found is None:
            raise SlackApiError("not_found")
        if args.get("hash") and args["hash"] != found["view"]["hash"]:
            raise SlackApiError("hash_conflict")
        found["view"] = {**found["view"], **view_arg(args.get("view")), "hash": self._hash()}
        return {"view": found["view"]}

    def _hash(self) -> str:
        # views.open docs example: "hash": "156772938.1827394"; a new one after every change, for views.update's check.
        return f"{int(self.clock.now().timestamp())}.{secrets.token_hex(4)}"

