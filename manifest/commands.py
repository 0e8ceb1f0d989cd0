"""`handoff manifest teams|slack`: build the chat app packages from flags, falling back to HANDOFF_* variables."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ValidationError

from handoff.bot.core.errors import ConfigError
from handoff.manifest.slack import SlackAppSettings, build_slack_manifest, to_json, to_yaml
from handoff.manifest.teams import TeamsAppSettings, build_teams_package


class Option(NamedTuple):
    """One settings field as the command line and the environment spell it, with where to find its value."""

    field: str
    flag: str
    env: str
    help: str


PUBLIC_URL = Option("public_url", "--public-url", "HANDOFF_PUBLIC_URL", "the https URL where Handoff is reachable from the internet")

TEAMS_OPTIONS = (
    Option("app_id", "--app-id", "HANDOFF_TEAMS__APP_ID", "the bot's Microsoft App ID, a GUID (Azure portal › your Azure Bot › Configuration)"),
    Option("bot_id", "--bot-id", "HANDOFF_TEAMS__BOT_ID", "the Bot Framework app id, only if it differs from the app id"),
    PUBLIC_URL,
    Option("name", "--name", "HANDOFF_TEAMS__APP_NAME", "the app name people see in Teams, 30 characters at most"),
    Option("developer_name", "--developer-name", "HANDOFF_TEAMS__DEVELOPER_NAME", "your organisation's name, 32 characters at most"),
    Option("website_url", "--website-url", "HANDOFF_TEAMS__WEBSITE_URL", "an https page about this app, e.g. your intranet page for it"),
    Option("privacy_url", "--privacy-url", "HANDOFF_TEAMS__PRIVACY_URL", "your organisation's https privacy policy page"),
    Option("terms_url", "--terms-url", "HANDOFF_TEAMS__TERMS_URL", "your organisation's https terms of use page"),
    Option("version", "--app-version", "HANDOFF_TEAMS__APP_VERSION", "the package version, MAJOR.MINOR.PATCH; raise it for every upload"),
    Option("app_id_uri", "--app-id-uri", "HANDOFF_TEAMS__APP_ID_URI", "the bot app's Application ID URI (api://…), only for single sign-on"),
    Option("graph_read", "--graph-read", "HANDOFF_TEAMS__GRAPH_READ",
           "true to ask each team and group chat for read access to its messages, so Handoff never posts a card twice after a crash"),
)

SLACK_OPTIONS = (
    PUBLIC_URL,
    Option("name", "--name", "HANDOFF_SLACK__APP_NAME", "the app name people see in Slack, 35 characters at most"),
)


def _add_options(parser: argparse.ArgumentParser, options: tuple[Option, ...]) -> None:
    for option in options:
        parser.add_argument(option.flag, dest=option.field, help=f"{option.help} (or {option.env})")


def _settings(what: str, model: type[BaseModel], options: tuple[Option, ...], args: argparse.Namespace, required: set[str], **fixed: object):
    """Build `model` from flags, then environment variables; name the flag and variable of anything missing or wrong."""
    values = {o.field: getattr(args, o.field) or os.environ.get(o.env) for o in options}
    values = {field: value for field, value in values.items() if value}
    by_field = {o.field: o for o in options}
    missing = [by_field[f] for f in sorted(required - values.keys(), key=list(by_field).index)]
    if missing:
        lines = "\n".join(f"  {o.flag} (or {o.env}): {o.help}" for o in missing)
        raise ConfigError(f"Cannot build {what}: these values are missing. Pass each flag or set its variable.\n{lines}")
    try:
        return model(**values, **fixed)
    except ValidationError as error:
        problems = []
        for e in error.errors():
            option = by_field.get(str(e["loc"][0])) if e["loc"] else None
            where = f"{option.flag} (or {option.env})" if option else "the settings"
            problems.append(f"  {where}: {e['msg'].removeprefix('Value error, ')}")
        raise ConfigError(f"Cannot build {what}: these values are wrong. Fix each flag or variable.\n" + "\n".join(problems)) from None


def _required(model: type[BaseModel]) -> set[str]:
    return {name for name, field in model.model_fields.items() if field.is_required()}


def cmd_teams(args: argparse.Namespace) -> int:
    """Write the Teams app package zip."""
    settings = _settings("the Teams app package", TeamsAppSettings, TEAMS_OPTIONS, args, _required(TeamsAppSettings))
    out = build_teams_package(settings, Path(args.out))
    print(f"Wrote {out}. Upload it in Teams: Apps › Manage your apps › Upload an app › Upload a custom app "
          "(or Teams admin center › Teams apps › Manage apps › Upload new app).")
    return 0


def cmd_slack(args: argparse.Namespace) -> int:
    """Print or write the Slack app manifest."""
    # Socket Mode is the one case where Slack needs no URL to reach Handoff.
    required = set() if args.socket_mode else {"public_url"}
    settings = _settings("the Slack app manifest", SlackAppSettings, SLACK_OPTIONS, args, required, socket_mode=args.socket_mode)
    text = (to_json if args.format == "json" else to_yaml)(build_slack_manifest(settings))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"Wrote {out}. Create the app at api.slack.com/apps › Create New App › From a manifest, "
              "and paste it on the YAML or JSON tab.")
    else:
        sys.stdout.write(text)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `manifest teams` and `manifest slack` to the handoff command line."""
    manifest = subparsers.add_parser("manifest", help="build the Teams app package or the Slack app manifest")
    kinds = manifest.add_subparsers(dest="manifest_command", required=True)

    teams = kinds.add_parser("teams", help="write the Teams app package (manifest.json and icons, zipped)")
    teams.add_argument("--out", default="handoff-teams.zip", help="where to write the zip (default: handoff-teams.zip)")
    _add_options(teams, TEAMS_OPTIONS)
    teams.set_defaults(func=cmd_teams)

    slack = kinds.add_parser("slack", help="print the Slack app manifest (YAML or JSON)")
    slack.add_argument("--format", choices=["yaml", "json"], default="yaml")
    slack.add_argument("--socket-mode", action="store_true", help="no request URLs: Slack talks to Handoff over Socket Mode")
    slack.add_argument("--out", help="write to this file instead of standard output")
    _add_options(slack, SLACK_OPTIONS)
    slack.set_defaults(func=cmd_slack)
