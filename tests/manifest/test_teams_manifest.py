"""The Teams app package: valid against Microsoft's schema, and holding exactly what a Teams upload needs."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib

import jsonschema
import pytest
from pydantic import ValidationError

from handoff.manifest.teams import MANIFEST_VERSION, SCHEMA_FILE, TeamsAppSettings, build_teams_manifest, build_teams_package

APP_ID = "6f1c2a8e-3b7d-4e9a-9c41-2d5b8e7f0a13"
BOT_ID = "0b4e5f6a-7c8d-4e9f-8a1b-2c3d4e5f6a7b"
REQUIRED = dict(
    app_id=APP_ID,
    public_url="https://handoff.acme.example/",
    developer_name="Acme Corp",
    website_url="https://intranet.acme.example/handoff",
    privacy_url="https://acme.example/privacy",
    terms_url="https://acme.example/terms",
)


def teams_validator() -> jsonschema.Validator:
    """Microsoft's schema says draft-04 but uses draft-06 `const` for manifestVersion; Teams' own validator
    (ajv) enforces it, so this one does too. The schema has no external $ref: nothing is fetched."""
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    Draft4WithConst = jsonschema.validators.extend(
        jsonschema.Draft4Validator, {"const": jsonschema.Draft7Validator.VALIDATORS["const"]}
    )
    return Draft4WithConst(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def read_png(data: bytes) -> tuple[int, int, list[list[tuple[int, ...]]]]:
    """Width, height and RGBA rows of an 8-bit RGBA PNG with unfiltered rows, checking every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    chunks: dict[bytes, bytes] = {}
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks[kind] = chunks.get(kind, b"") + body
        at += 12 + length
    assert b"IEND" in chunks
    width, height, depth, color_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color_type) == (8, 6), "expected 8-bit RGBA"
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + width * 4
    rows = []
    for y in range(height):
        line = raw[y * stride : (y + 1) * stride]
        assert line[0] == 0, "this reader handles unfiltered rows only"
        rows.append([tuple(line[1 + x * 4 : 5 + x * 4]) for x in range(width)])
    return width, height, rows


@pytest.fixture(
    params=[{}, {"bot_id": BOT_ID}, {"app_id_uri": f"api://handoff.acme.example/botid-{APP_ID}", "version": "2.3.4"},
            {"graph_read": True}],
    ids=["defaults", "separate-bot-id", "sso", "graph-read"],
)
def settings(request) -> TeamsAppSettings:
    return TeamsAppSettings(**REQUIRED, **request.param)


def test_manifest_validates_against_the_official_schema(settings):
    manifest = build_teams_manifest(settings)

    teams_validator().validate(manifest)
    assert manifest["manifestVersion"] == MANIFEST_VERSION
    assert manifest["$schema"].endswith(f"/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json")


def test_the_schema_check_has_teeth(settings):
    manifest = build_teams_manifest(settings)
    manifest["bots"][0]["scopes"] = ["personal", "groupchat"]  # wrong case: v1.22 spells it groupChat
    manifest["manifestVersion"] = "1.21"

    problems = sorted(e.message for e in teams_validator().iter_errors(manifest))

    assert problems == ["'1.22' was expected", "'groupchat' is not one of ['team', 'personal', 'groupChat', 'copilot']"]


def test_bot_is_reachable_in_every_scope_with_the_chat_commands(settings):
    bot = build_teams_manifest(settings)["bots"][0]

    assert bot["botId"] == (settings.bot_id or APP_ID)
    assert bot["scopes"] == ["personal", "team", "groupChat"]
    assert bot["supportsFiles"] is False
    [command_list] = bot["commandLists"]
    assert command_list["scopes"] == ["personal", "team", "groupChat"]
    assert [c["title"] for c in command_list["commands"]] == ["status", "my approvals", "what's stuck", "help"]


def test_valid_domains_hold_the_public_host_only():
    settings = TeamsAppSettings(**{**REQUIRED, "public_url": "https://bots.acme.example:8443/handoff/"})

    assert build_teams_manifest(settings)["validDomains"] == ["bots.acme.example"]


def test_web_application_info_only_with_an_app_id_uri_or_graph_read(settings):
    manifest = build_teams_manifest(settings)

    if settings.app_id_uri:
        assert manifest["webApplicationInfo"] == {"id": APP_ID, "resource": settings.app_id_uri}
    elif settings.graph_read:
        assert manifest["webApplicationInfo"] == {"id": APP_ID, "resource": settings.public_url}
    else:
        assert "webApplicationInfo" not in manifest


def test_graph_read_asks_for_the_channel_and_group_chat_read_permissions_only_when_set(settings):
    manifest = build_teams_manifest(settings)

    if settings.graph_read:
        assert manifest["authorization"] == {"permissions": {"resourceSpecific": [
            {"name": "ChannelMessage.Read.Group", "type": "Application"},
            {"name": "ChatMessage.Read.Chat", "type": "Application"},
        ]}}
    else:
        assert "authorization" not in manifest


def test_package_holds_exactly_the_manifest_and_two_icons_of_the_required_sizes(settings, tmp_path):
    out = build_teams_package(settings, tmp_path / "nested" / "handoff-teams.zip")

    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        color = read_png(package.read(manifest["icons"]["color"]))
        outline = read_png(package.read(manifest["icons"]["outline"]))

    assert manifest == build_teams_manifest(settings)
    assert color[:2] == (192, 192)
    assert {pixel[3] for row in color[2] for pixel in row} == {255}, "the colour icon must be fully opaque"
    assert outline[:2] == (32, 32)
    outline_pixels = [pixel for row in outline[2] for pixel in row]
    assert {p[:3] for p in outline_pixels if p[3]} == {(255, 255, 255)}, "the outline icon must be white"
    assert outline[2][0][0][3] == 0 and sum(p[3] == 0 for p in outline_pixels) > len(outline_pixels) // 2, (
        "the outline icon needs a transparent background"
    )


def test_same_settings_give_the_same_package_bytes(settings, tmp_path):
    first = build_teams_package(settings, tmp_path / "a.zip").read_bytes()
    second = build_teams_package(settings, tmp_path / "b.zip").read_bytes()

    assert first == second


def test_missing_app_id_is_refused_by_name():
    with pytest.raises(ValidationError) as caught:
        TeamsAppSettings(**{k: v for k, v in REQUIRED.items() if k != "app_id"})

    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("app_id",), "missing")]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"app_id": "handoff"}, "app_id", "String should match pattern"),
        ({"privacy_url": "http://acme.example/privacy"}, "privacy_url", "must be an https:// URL with a host"),
        ({"name": "A name far longer than thirty characters"}, "name", "at most 30 characters"),
        ({"version": "1.0"}, "version", "String should match pattern"),
        ({"name": "Same", "full_name": "Same"}, None, "the short and full app names must differ"),
    ],
)
def test_bad_settings_name_the_field(change, field, message):
    with pytest.raises(ValidationError) as caught:
        TeamsAppSettings(**{**REQUIRED, **change})

    [error] = caught.value.errors()
    assert error["loc"] == ((field,) if field else ())
    assert message in error["msg"]
