"""The Slack app manifest: within Slack's documented rules, pointing at Handoff, asking for no scope it doesn't use."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from handoff.manifest.slack import BOT_EVENTS, BOT_SCOPES, EVENTS_PATH, SCHEMA_FILE, SlackAppSettings, build_slack_manifest, to_json, to_yaml

PUBLIC_URL = "https://handoff.acme.example"

# The bot scope each Web API method needs (docs.slack.dev/reference/methods/<method>, "Scopes › Bot token").
# views.open needs none: its trigger_id is the authorisation. conversations.history needs the history scope of each
# conversation type read: public and private channels and DMs, where cards go (group DMs, mpim:history, get none).
METHOD_SCOPES = {
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "conversations.open": {"im:write"},
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "views.open": set(),
}


def slack_validator() -> jsonschema.Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def source_of(module: str) -> str:
    """A module's code, read as text without importing it: what it calls and serves is what the manifest must grant."""
    return Path(importlib.util.find_spec(module).origin).read_text()


def adapter_source() -> str:
    return source_of("handoff.bot.channels.slack")


@pytest.fixture(params=[False, True], ids=["request-urls", "socket-mode"])
def manifest(request) -> dict:
    socket_mode = request.param
    return build_slack_manifest(SlackAppSettings(public_url=None if socket_mode else PUBLIC_URL, socket_mode=socket_mode))


def test_manifest_meets_slacks_documented_rules(manifest):
    slack_validator().validate(manifest)


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (("display_information", "name"), "N" * 36, "is too long"),
        (("display_information", "long_description"), "Too short.", "is too short"),
        (("features", "slash_commands", 0, "command"), "/Handoff Now", "does not match"),
        (("oauth_config", "scopes", "bot"), ["chat:write", "chat:write_all"], "is not one of"),
        (("settings", "event_subscriptions", "bot_events"), ["message.everything"], "is not one of"),
        (("settings", "interactivity", "request_url"), "http://handoff.acme.example/slack/events", "does not match"),
        (("settings", "colour"), "blue", "Additional properties are not allowed"),
    ],
)
def test_the_rules_have_teeth(path, value, complaint):
    manifest = build_slack_manifest(SlackAppSettings(public_url=PUBLIC_URL))
    holder = manifest
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value

    assert any(complaint in e.message for e in slack_validator().iter_errors(manifest))


def test_request_urls_are_required_without_socket_mode():
    manifest = build_slack_manifest(SlackAppSettings(public_url=PUBLIC_URL))
    del manifest["settings"]["event_subscriptions"]["request_url"]

    [error] = slack_validator().iter_errors(manifest)
    assert error.message == "'request_url' is a required property"


def test_every_url_is_the_public_slack_events_endpoint():
    manifest = build_slack_manifest(SlackAppSettings(public_url=PUBLIC_URL + "/"))

    urls = {
        manifest["features"]["slash_commands"][0]["url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["settings"]["interactivity"]["request_url"],
    }
    assert urls == {"https://handoff.acme.example/slack/events"}
    assert manifest["settings"]["socket_mode_enabled"] is False


def test_handoff_serves_slack_on_that_path():
    assert re.search(rf'add_post\(\s*"{EVENTS_PATH}"', source_of("handoff.bot.app"))


def test_socket_mode_drops_every_request_url_and_needs_no_public_url():
    manifest = build_slack_manifest(SlackAppSettings(socket_mode=True))

    assert "url" not in manifest["features"]["slash_commands"][0]
    assert manifest["settings"]["event_subscriptions"] == {"bot_events": list(BOT_EVENTS)}
    assert manifest["settings"]["interactivity"] == {"is_enabled": True}
    assert manifest["settings"]["socket_mode_enabled"] is True


def test_without_socket_mode_a_public_url_is_required():
    with pytest.raises(ValidationError, match="a public https URL is required unless Socket Mode is on"):
        SlackAppSettings()


def test_bot_scopes_are_exactly_what_the_adapter_uses():
    source = adapter_source()
    called = set(re.findall(r'\.call\(\s*"([a-z]+\.[A-Za-z]+)"', source))
    unknown = called - METHOD_SCOPES.keys()
    assert not unknown, f"the Slack adapter calls {sorted(unknown)}: add their scopes to BOT_SCOPES and METHOD_SCOPES"

    needed = set().union(*(METHOD_SCOPES[m] for m in called)) | set(BOT_EVENTS.values()) | {"commands"}
    assert set(BOT_SCOPES) == needed


def test_events_are_exactly_what_the_adapter_handles():
    handled = set(re.findall(r'@app\.event\("([a-z_]+)"\)', adapter_source()))

    # Slack subscribes to message events per conversation type: message.im, message.channels, message.groups.
    assert {event.split(".")[0] for event in BOT_EVENTS} == handled


def test_slash_command_is_the_one_the_adapter_answers(manifest):
    [command] = re.findall(r'@app\.command\("([^"]+)"\)', adapter_source())

    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [command]


def test_yaml_and_json_read_back_as_the_same_manifest(manifest):
    assert yaml.safe_load(to_yaml(manifest)) == manifest
    assert json.loads(to_json(manifest)) == manifest


@given(
    st.recursive(
        st.text() | st.integers() | st.booleans(),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(min_size=1), children, max_size=3),
        max_leaves=12,
    )
)
def test_any_text_survives_the_yaml_writer(value):
    document = {"key": value}

    assert yaml.safe_load(to_yaml(document)) == document


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "N" * 36}, "name", "at most 35 characters"),
        ({"long_description": "Too short for Slack."}, "long_description", "at least 175 characters"),
        ({"command": "/Handoff"}, "command", "String should match pattern"),
        ({"public_url": "http://handoff.acme.example"}, "public_url", "must be an https:// URL with a host"),
    ],
)
def test_bad_settings_name_the_field(change, field, message):
    with pytest.raises(ValidationError) as caught:
        SlackAppSettings(**{"public_url": PUBLIC_URL, **change})

    [error] = caught.value.errors()
    assert error["loc"] == (field,)
    assert message in error["msg"]
