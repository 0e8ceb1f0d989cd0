"""`handoff manifest …` as an admin runs it: flags, environment fallbacks, and errors that say what to set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest
import yaml

from handoff.bot.cli import main

APP_ID = "6f1c2a8e-3b7d-4e9a-9c41-2d5b8e7f0a13"
TEAMS_ENV = {
    "HANDOFF_PUBLIC_URL": "https://handoff.acme.example",
    "HANDOFF_TEAMS__APP_ID": APP_ID,
    "HANDOFF_TEAMS__DEVELOPER_NAME": "Acme Corp",
    "HANDOFF_TEAMS__WEBSITE_URL": "https://intranet.acme.example/handoff",
    "HANDOFF_TEAMS__PRIVACY_URL": "https://acme.example/privacy",
    "HANDOFF_TEAMS__TERMS_URL": "https://acme.example/terms",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """The developer's own HANDOFF_* variables must not leak into what these tests expect."""
    for name in list(os.environ):
        if name.startswith("HANDOFF_"):
            monkeypatch.delenv(name)


def read_manifest(path) -> dict:
    with zipfile.ZipFile(path) as package:
        return json.loads(package.read("manifest.json"))


def test_teams_package_from_environment_variables(monkeypatch, tmp_path, capsys):
    for name, value in TEAMS_ENV.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "handoff-teams.zip"

    assert main(["manifest", "teams", "--out", str(out)]) == 0

    manifest = read_manifest(out)
    assert manifest["id"] == APP_ID
    assert manifest["developer"]["name"] == "Acme Corp"
    assert manifest["validDomains"] == ["handoff.acme.example"]
    assert f"Wrote {out}. Upload it in Teams" in capsys.readouterr().out


def test_graph_read_from_the_serve_setting_asks_for_the_rsc_read_permissions(monkeypatch, tmp_path):
    """HANDOFF_TEAMS__GRAPH_READ turns on both the read-back in `handoff serve` and, here, the permissions it needs."""
    for name, value in {**TEAMS_ENV, "HANDOFF_TEAMS__GRAPH_READ": "true"}.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "handoff-teams.zip"

    assert main(["manifest", "teams", "--out", str(out)]) == 0

    permissions = read_manifest(out)["authorization"]["permissions"]["resourceSpecific"]
    assert [p["name"] for p in permissions] == ["ChannelMessage.Read.Group", "ChatMessage.Read.Chat"]


def test_flags_win_over_environment_variables(monkeypatch, tmp_path):
    for name, value in TEAMS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HANDOFF_TEAMS__APP_NAME", "From env")
    out = tmp_path / "app.zip"

    main(["manifest", "teams", "--out", str(out), "--name", "From flag", "--app-version", "1.4.0"])

    manifest = read_manifest(out)
    assert manifest["name"]["short"] == "From flag"
    assert manifest["version"] == "1.4.0"


def test_missing_app_id_names_the_flag_and_the_variable(monkeypatch, tmp_path, capsys):
    for name, value in TEAMS_ENV.items():
        if name != "HANDOFF_TEAMS__APP_ID":
            monkeypatch.setenv(name, value)

    assert main(["manifest", "teams", "--out", str(tmp_path / "app.zip")]) == 2

    assert capsys.readouterr().err == (
        "handoff: Cannot build the Teams app package: these values are missing. Pass each flag or set its variable.\n"
        "  --app-id (or HANDOFF_TEAMS__APP_ID): the bot's Microsoft App ID, a GUID "
        "(Azure portal › your Azure Bot › Configuration)\n"
    )
    assert not (tmp_path / "app.zip").exists()


def test_wrong_values_name_their_flag_and_variable(monkeypatch, tmp_path, capsys):
    for name, value in TEAMS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HANDOFF_PUBLIC_URL", "http://handoff.acme.example")

    assert main(["manifest", "teams", "--out", str(tmp_path / "app.zip"), "--app-id", "not-a-guid"]) == 2

    err = capsys.readouterr().err
    assert "these values are wrong. Fix each flag or variable." in err
    assert "--app-id (or HANDOFF_TEAMS__APP_ID): String should match pattern" in err
    assert "--public-url (or HANDOFF_PUBLIC_URL): must be an https:// URL with a host" in err


def test_slack_yaml_on_standard_output(capsys):
    assert main(["manifest", "slack", "--public-url", "https://handoff.acme.example"]) == 0

    manifest = yaml.safe_load(capsys.readouterr().out)
    assert manifest["settings"]["event_subscriptions"]["request_url"] == "https://handoff.acme.example/slack/events"


def test_slack_json_to_a_file_in_socket_mode(tmp_path, capsys):
    out = tmp_path / "slack" / "manifest.json"

    assert main(["manifest", "slack", "--socket-mode", "--format", "json", "--out", str(out), "--name", "Approvals"]) == 0

    manifest = json.loads(out.read_text())
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["display_information"]["name"] == "Approvals"
    assert "Create New App › From a manifest" in capsys.readouterr().out


def test_slack_without_public_url_or_socket_mode_says_what_to_set(capsys):
    assert main(["manifest", "slack"]) == 2

    assert capsys.readouterr().err == (
        "handoff: Cannot build the Slack app manifest: these values are missing. Pass each flag or set its variable.\n"
        "  --public-url (or HANDOFF_PUBLIC_URL): the https URL where Handoff is reachable from the internet\n"
    )


def test_the_command_line_builds_the_package_in_a_real_process(tmp_path):
    out = tmp_path / "handoff-teams.zip"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}, **TEAMS_ENV}

    run = subprocess.run(
        [sys.executable, "-m", "handoff.bot.cli", "manifest", "teams", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=60,
    )

    assert run.returncode == 0, run.stderr
    assert read_manifest(out)["bots"][0]["botId"] == APP_ID
