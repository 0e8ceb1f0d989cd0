"""The other side of Slack: signed requests shaped like those Slack sends an app (clicks, modal submits, commands, events)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from handoff.bot.core.ports import Clock, SystemClock

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@dataclass(frozen=True)
class Workspace:
    """The team, app and bot a fake Slack plays; the defaults are the ids in shared/fixtures/slack."""

    team_id: str = "T01HANDOFF"
    team_name: str = "Handoff Demo"
    domain: str = "handoff-demo"
    app_id: str = "A05HANDOFF1"
    bot_id: str = "B05HANDOFF1"
    bot_user_id: str = "U05HANDOFFBOT"
    bot_user_name: str = "handoff"
    # The deprecated verification token Slack still puts in payloads; apps must check signatures instead.
    verification_token: str = "legacy-verification-token-do-not-use"


class SlackSigner:
    """Builds and signs what Slack POSTs to an app, byte for byte as bolt-python's tests and our fixtures show."""

    def __init__(self, signing_secret: str, clock: Clock | None = None, workspace: Workspace | None = None) -> None:
        self._secret = signing_secret.encode()
        self.clock = clock or SystemClock()
        self.workspace = workspace or Workspace()
        self._serial = itertools.count(7289134011)

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The two headers Slack adds: HMAC-SHA256 of `v0:{timestamp}:{raw body}` (slack_sdk SignatureVerifier)."""
        stamp = str(int(self.clock.now().timestamp()) if timestamp is None else timestamp)
        digest = hmac.new(self._secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}

    def trigger_id(self) -> str:
        """A fresh trigger id in Slack's documented format, e.g. `7289134011.1718364000.9f3c…`."""
        return f"{next(self._serial)}.{int(self.clock.now().timestamp())}.{secrets.token_hex(16)}"

    def block_actions_body(self, user_id: str, user_name: str, channel: str, message_ts: str, action_id: str, value: str,
                           trigger_id: str | None = None, *, channel_name: str = "", message: dict | None = None) -> bytes:
        """A button click (shared/fixtures/slack/block_actions_approve.json). Pass the posted `message` so the
        action carries the real button's block_id, text and style, as Slack's would."""
        ws = self.workspace
        message = message or {"type": "message", "subtype": "bot_message", "text": "", "ts": message_ts, "bot_id": ws.bot_id}
        button = _find_button(message.get("blocks", []), action_id)
        action = {"action_id": action_id, "block_id": button.get("block_id") or "actions",
                  "text": button.get("text", {"type": "plain_text", "text": action_id, "emoji": True}),
                  "value": value, "type": "button", "action_ts": self._action_ts()}
        if "style" in button:
            action["style"] = button["style"]
        payload = {
            "type": "block_actions", "user": self._user(user_id, user_name), "api_app_id": ws.app_id,
            "token": ws.verification_token,
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": trigger_id or self.trigger_id(), "team": {"id": ws.team_id, "domain": ws.domain},
            "enterprise": None, "is_enterprise_install": False, "channel": {"id": channel, "name": channel_name},
            "message": message, "state": {"values": {}}, "response_url": self._response_url("actions"), "actions": [action],
        }
        return _form_payload(payload)

    def view_submission_body(self, user_id: str, user_name: str, view: dict, values: dict[str, dict[str, str]],
                             trigger_id: str | None = None) -> bytes:
        """A modal submit (shared/fixtures/slack/view_submission_ask_info.json): `view` as opened, `values` typed in,
        as {block_id: {action_id: text}}. No channel: the app carries it in private_metadata."""
        ws = self.workspace
        view_id = view.get("id") or f"V{secrets.token_hex(5).upper()}"
        kinds = {b.get("block_id"): b.get("element", {}).get("type", "plain_text_input") for b in view.get("blocks", [])}
        state = {block: {action: {"type": kinds.get(block, "plain_text_input"), "value": text} for action, text in inputs.items()}
                 for block, inputs in values.items()}
        submitted = {
            "id": view_id, "team_id": ws.team_id, "type": "modal", "blocks": [], "private_metadata": "", "callback_id": "",
            "hash": f"{int(self.clock.now().timestamp())}.{secrets.token_hex(4)}", "clear_on_close": False,
            "notify_on_close": False, "previous_view_id": None, "root_view_id": view_id, "app_id": ws.app_id,
            "external_id": "", "app_installed_team_id": ws.team_id, "bot_id": ws.bot_id, **view, "state": {"values": state},
        }
        payload = {
            "type": "view_submission", "team": {"id": ws.team_id, "domain": ws.domain}, "user": self._user(user_id, user_name),
            "api_app_id": ws.app_id, "token": ws.verification_token, "trigger_id": trigger_id or self.trigger_id(),
            "view": submitted, "response_urls": [], "is_enterprise_install": False, "enterprise": None,
        }
        return _form_payload(payload)

    def slash_command_body(self, user_id: str, user_name: str, channel_id: str, channel_name: str, text: str,
                           command: str = "/handoff", trigger_id: str | None = None) -> bytes:
        """A slash command: a plain form body, fields in the order of shared/fixtures/slack/slash_command_status.txt."""
        ws = self.workspace
        return urlencode({
            "token": ws.verification_token, "team_id": ws.team_id, "team_domain": ws.domain, "channel_id": channel_id,
            "channel_name": channel_name, "user_id": user_id, "user_name": user_name, "command": command, "text": text,
            "api_app_id": ws.app_id, "is_enterprise_install": "false", "response_url": self._response_url("commands"),
            "trigger_id": trigger_id or self.trigger_id(),
        }).encode()

    def event_callback_body(self, event: dict, event_id: str) -> bytes:
        """An Events API delivery, JSON (shared/fixtures/slack/event_app_mention.json)."""
        ws = self.workspace
        return json.dumps({
            "token": ws.verification_token, "team_id": ws.team_id, "api_app_id": ws.app_id, "event": event,
            "type": "event_callback", "event_id": event_id, "event_time": int(self.clock.now().timestamp()),
            "authorizations": [{"enterprise_id": None, "team_id": ws.team_id, "user_id": ws.bot_user_id, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
            "event_context": f"1-{event.get('type', '')}-{ws.team_id}-{event.get('channel', '')}",
        }).encode()

    def _user(self, user_id: str, user_name: str) -> dict:
        return {"id": user_id, "username": user_name, "name": user_name, "team_id": self.workspace.team_id}

    def _action_ts(self) -> str:
        return f"{self.clock.now().timestamp():.6f}"

    def _response_url(self, kind: str) -> str:
        return f"https://hooks.slack.com/{kind}/{self.workspace.team_id}/{next(self._serial)}/{secrets.token_urlsafe(18)}"


def _find_button(blocks: list[dict], action_id: str) -> dict:
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id")}
    return {}


def _form_payload(payload: dict) -> bytes:
    # Interactivity arrives as one form field, `payload`, holding URL-encoded JSON (bolt-python test_block_actions.py).
    return urlencode({"payload": json.dumps(payload)}).encode()
