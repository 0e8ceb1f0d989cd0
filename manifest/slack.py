"""The Slack app manifest: the scopes, events, slash command and URLs Handoff needs, as YAML or JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from handoff.manifest.chat_commands import CHAT_COMMANDS
from handoff.manifest.fields import HttpsUrl

# Our own JSON Schema of Slack's documented manifest rules; the tests hold every manifest to it.
SCHEMA_FILE = Path(__file__).parent / "schemas" / "slack-app-manifest.schema.json"

# Every bot scope Handoff asks for, and why; the tests check this against the Web API methods the
# Slack adapter calls and the events below (scope per method: docs.slack.dev/reference/methods/<method>).
BOT_SCOPES: dict[str, str] = {
    "chat:write": "chat.postMessage, chat.update and chat.postEphemeral: cards, card updates, thread replies, whispers",
    "commands": "the /handoff slash command",
    "im:write": "conversations.open, to DM an approver whose stage is delivered by direct message",
    "app_mentions:read": "the app_mention event: @Handoff status questions in channels",
    # conversations.history too: after a crash mid-post, Handoff looks for the card it may have posted (by metadata).
    "im:history": "the message.im event: status questions sent to Handoff by DM; finding a card posted by DM",
    "channels:history": "the message.channels event: thread replies that answer 'ask for info' in public channels; finding a card",
    "groups:history": "the message.groups event: the same thread replies in private channels; finding a card",
}

# Event subscriptions and the scope each one requires (docs.slack.dev/reference/events/<event>).
BOT_EVENTS: dict[str, str] = {
    "app_mention": "app_mentions:read",
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
}

# Slack routes events, interactivity and slash commands to one request URL each; Handoff serves all three
# on this path (bot/app.py).
EVENTS_PATH = "/slack/events"


class SlackAppSettings(BaseModel):
    """What the Slack manifest says about this Handoff: names, the slash command, where Slack sends requests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Socket Mode needs no public URL: Slack sends everything over the app's WebSocket.
    public_url: HttpsUrl | None = None
    socket_mode: bool = False
    # Limits from Slack's app manifest reference (docs.slack.dev/reference/app-manifest).
    name: str = Field(default="Handoff", min_length=1, max_length=35)
    description: str = Field(default="Approve ERP requests from Odoo and Dataverse in Slack.", min_length=1, max_length=140)
    long_description: str = Field(
        default=(
            "Handoff brings approval requests from your ERP (Odoo or Microsoft Dataverse) to the people who decide "
            "them. Each request arrives as a card with the facts that matter; approve, reject or ask for information "
            "in one click, and the decision is written back to the ERP and kept in an append-only log. "
            "Type /handoff status <reference> to see where a request stands."
        ),
        min_length=175,
        max_length=4000,
    )
    background_color: str = Field(default="#4F6BED", pattern=r"^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$")
    command: str = Field(default="/handoff", pattern=r"^/[a-z0-9_-]+$", max_length=32)

    @model_validator(mode="after")
    def _reachable(self) -> SlackAppSettings:
        if not self.socket_mode and self.public_url is None:
            raise ValueError("a public https URL is required unless Socket Mode is on: Slack must reach Handoff")
        return self


def _bot_display_name(name: str) -> str:
    # Bot user display names allow a-z, 0-9, '-', '_' and '.' only (@slack/web-api manifest types).
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "handoff"


def build_slack_manifest(settings: SlackAppSettings) -> dict:
    """The app manifest for these settings; with socket_mode, request URLs are left out and Socket Mode is on."""
    # Shape: docs.slack.dev/reference/app-manifest and @slack/web-api src/types/request/manifest.ts.
    url = None if settings.socket_mode else f"{settings.public_url}{EVENTS_PATH}"
    command = _present(
        command=settings.command,
        url=url,
        description="Ask Handoff where a request stands",
        usage_hint=" | ".join(c.usage for c in CHAT_COMMANDS),
        # The argument is a reference or a vendor name; escaping would turn "@name" into a user id.
        should_escape=False,
    )
    return {
        "display_information": {
            "name": settings.name,
            "description": settings.description,
            "long_description": settings.long_description,
            "background_color": settings.background_color,
        },
        "features": {
            # The Messages tab must accept input, or people cannot DM Handoff their status questions.
            "app_home": {"home_tab_enabled": False, "messages_tab_enabled": True, "messages_tab_read_only_enabled": False},
            # An Events API bot holds no connection that could show presence, so it looks away unless this is set.
            "bot_user": {"display_name": _bot_display_name(settings.name), "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": _present(request_url=url, bot_events=list(BOT_EVENTS)),
            "interactivity": _present(is_enabled=True, request_url=url),
            "org_deploy_enabled": False,
            "socket_mode_enabled": settings.socket_mode,
            "token_rotation_enabled": False,
        },
    }


def _present(**fields: object) -> dict:
    """The fields that have a value: Socket Mode manifests must leave the request URLs out, not null."""
    return {key: value for key, value in fields.items() if value is not None}


def to_json(manifest: dict) -> str:
    """The manifest as indented JSON, for Slack's 'From an app manifest' JSON tab."""
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def to_yaml(manifest: dict) -> str:
    """The manifest as block-style YAML that PyYAML and Slack's own editor read back unchanged."""
    return "\n".join(_yaml_lines(manifest, 0)) + "\n"


def _yaml_lines(value: dict | list, indent: int) -> list[str]:
    pad = " " * indent
    items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
    lines: list[str] = []
    for key, item in items:
        lead = f"{pad}- " if key is None else f"{pad}{_key(key)}:"
        if isinstance(item, (dict, list)) and item:
            nested = _yaml_lines(item, indent + 2)
            if key is None:
                lines.append(lead + nested[0].lstrip())
                lines.extend(nested[1:])
            else:
                lines.append(lead)
                lines.extend(nested)
        else:
            lines.append(f"{lead}{'' if key is None else ' '}{_scalar(item)}")
    return lines


# Plain words that YAML 1.1 reads as booleans or null, so a key spelled like one must be quoted.
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _key(key: str) -> str:
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) and key.lower() not in _YAML_WORDS
    return key if plain else _quote(key)


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _quote(value)
    if value == {} or value == []:
        return json.dumps(value)
    raise TypeError(f"the YAML writer handles str, int, bool, dict and list, not {type(value).__name__}")


def _quote(text: str) -> str:
    """A double-quoted YAML scalar: printable characters as they are, everything else escaped."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        # YAML's printable set, less U+0085/U+2028/U+2029, which YAML 1.1 readers take as line breaks.
        elif 0x20 <= code < 0x7F or (0xA0 <= code <= 0xD7FF and code not in (0x2028, 0x2029)) or 0xE000 <= code <= 0xFFFD or code > 0xFFFF:
            out.append(char)
        else:
            out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'
