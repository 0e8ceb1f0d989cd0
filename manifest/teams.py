"""The Microsoft Teams app package: manifest.json plus its two icons, zipped the way Teams uploads expect."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from handoff.manifest import icons
from handoff.manifest.chat_commands import CHAT_COMMANDS
from handoff.manifest.fields import HttpsUrl

log = logging.getLogger(__name__)

# The newest version Microsoft Learn's manifest reference calls current, and the one vendored in
# manifest/schemas/ (from npm @microsoft/app-manifest 1.1.2). Bumping it means vendoring that schema too.
MANIFEST_VERSION = "1.22"
SCHEMA_FILE = Path(__file__).parent / "schemas" / f"MicrosoftTeams.v{MANIFEST_VERSION}.schema.json"
SCHEMA_URL = f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"

# Patterns from the schema's own definitions (guid, semver, hexColor), so bad values fail here, by name,
# instead of at upload time in the Teams admin center.
GUID = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"
SEMVER = r"^([0-9]|[1-9][0-9]*)\.([0-9]|[1-9][0-9]*)\.([0-9]|[1-9][0-9]*)$"
HEX_COLOR = r"^#[0-9a-fA-F]{6}$"
BOT_SCOPES = ("personal", "team", "groupChat")
# What reading Handoff's own cards back through Microsoft Graph needs (bot/channels/teams_graph.py), granted per team or
# chat at install (msteams-docs graph-api/rsc/resource-specific-consent.md). No permission reaches 1:1 chats this way.
GRAPH_READ_PERMISSIONS = ("ChannelMessage.Read.Group", "ChatMessage.Read.Chat")
# A fixed timestamp makes the same settings produce the same zip, byte for byte.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class TeamsAppSettings(BaseModel):
    """What the Teams app package says about this Handoff: ids, names, developer links, where it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app_id: str = Field(pattern=GUID)
    # The Bot Framework registration; Microsoft's docs reuse the app id for it, so that is the default.
    bot_id: str | None = Field(default=None, pattern=GUID)
    public_url: HttpsUrl
    name: str = Field(default="Handoff", min_length=1, max_length=30)
    full_name: str = Field(default="Handoff ERP approvals", min_length=1, max_length=100)
    short_description: str = Field(default="Approve Odoo and Dataverse requests where you work.", min_length=1, max_length=80)
    full_description: str = Field(
        default=(
            "Handoff brings approval requests from your ERP (Odoo or Microsoft Dataverse) to the people who decide "
            "them. Each request arrives as a card with the facts that matter; approve, reject or ask for information "
            "in one click, and the decision is written back to the ERP and kept in an append-only log. Ask the bot "
            "\"status <reference>\" to see where a request stands, or \"my approvals\" for what waits on you."
        ),
        min_length=1,
        max_length=4000,
    )
    developer_name: str = Field(min_length=1, max_length=32)
    website_url: HttpsUrl
    privacy_url: HttpsUrl
    terms_url: HttpsUrl
    version: str = Field(default="1.0.0", pattern=SEMVER)
    accent_color: str = Field(default="#4F6BED", pattern=HEX_COLOR)
    # Only for single sign-on: the Application ID URI of the bot's Entra app (api://…).
    app_id_uri: str | None = Field(default=None, min_length=1, max_length=2048)
    # Ask for the RSC permissions that let Handoff find a card whose post answer was lost (RELIABILITY.md, "mid_post").
    graph_read: bool = False

    @model_validator(mode="after")
    def _distinct_texts(self) -> TeamsAppSettings:
        # Microsoft Learn, manifest schema: the short and full values of name and of description must differ.
        if self.name == self.full_name:
            raise ValueError("the short and full app names must differ (Teams rejects the package otherwise)")
        if self.short_description == self.full_description:
            raise ValueError("the short and full descriptions must differ (Teams rejects the package otherwise)")
        return self


def build_teams_manifest(settings: TeamsAppSettings) -> dict:
    """The manifest.json for these settings, at MANIFEST_VERSION."""
    # Field names and shapes: manifest schema v1.22 (manifest/schemas/MicrosoftTeams.v1.22.schema.json).
    bot_id = settings.bot_id or settings.app_id
    manifest: dict = {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": settings.version,
        "id": settings.app_id,
        "developer": {
            "name": settings.developer_name,
            "websiteUrl": settings.website_url,
            "privacyUrl": settings.privacy_url,
            "termsOfUseUrl": settings.terms_url,
        },
        "name": {"short": settings.name, "full": settings.full_name},
        "description": {"short": settings.short_description, "full": settings.full_description},
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": settings.accent_color,
        "bots": [
            {
                "botId": bot_id,
                "scopes": list(BOT_SCOPES),
                # Handoff reads text and card clicks only; saying so keeps the file-consent UI out of chats.
                "supportsFiles": False,
                # Approvers reply and ask "status …", so the bot must accept messages.
                "isNotificationOnly": False,
                "commandLists": [
                    {
                        "scopes": list(BOT_SCOPES),
                        "commands": [{"title": c.title, "description": c.description} for c in CHAT_COMMANDS],
                    }
                ],
            }
        ],
        "validDomains": [urlsplit(settings.public_url).hostname],
    }
    if settings.app_id_uri or settings.graph_read:
        # For RSC alone `resource` "has no operation ... any string will do" (msteams-docs graph-api/rsc/
        # test-resource-specific-consent.md), so the public URL stands in when there is no SSO Application ID URI.
        manifest["webApplicationInfo"] = {"id": bot_id, "resource": settings.app_id_uri or settings.public_url}
    if settings.graph_read:
        manifest["authorization"] = {"permissions": {"resourceSpecific": [
            {"name": name, "type": "Application"} for name in GRAPH_READ_PERMISSIONS]}}
    return manifest


def build_teams_package(settings: TeamsAppSettings, out: Path) -> Path:
    """Write the app package zip (manifest.json, color.png, outline.png at its root) to `out`; return `out`."""
    manifest = build_teams_manifest(settings)
    files = {
        "manifest.json": json.dumps(manifest, indent=2, ensure_ascii=False).encode(),
        "color.png": icons.color_icon(settings.accent_color),
        "outline.png": icons.outline_icon(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        for name, data in files.items():
            package.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED)
    log.info("manifest.teams.packaged", extra={"path": str(out), "manifest_version": MANIFEST_VERSION, "app_id": settings.app_id})
    return out
