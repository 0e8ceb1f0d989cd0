"""`handoff doctor`: check settings, secrets, routing, database, every service Handoff talks to, and the webhooks."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from pydantic import BaseModel, SecretStr

from handoff.bot.admin import dataverse_register, odoo_rules
from handoff.bot.channels.slack import SlackSettings
from handoff.bot.channels.teams_auth import TeamsSettings
from handoff.bot.config import Settings
from handoff.bot.core.errors import HandoffError
from handoff.connectors.dataverse_webapi import WebApi
from handoff.connectors.odoo_rpc import OdooRpc
from handoff.state import pg
from handoff.state.migrations import MIGRATIONS

TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True)
class Check:
    """One verdict: `ok` None means skipped (that part is not configured)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""


class Failed(Exception):
    """A check failed; `fix` is what to do about it."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.fix = fix


async def diagnose(settings: Settings, dataverse_api: Callable[[aiohttp.ClientSession], WebApi] | None = None) -> list[Check]:
    """Run every check, in the order a person would fix things; a failure never stops the others.

    `dataverse_api` makes the Web API client (the CLI's holds MSAL's token cache); required when Dataverse is configured.
    """
    s = settings
    checks = [secrets_check(s), _sync("Routing", lambda: _routing(s.routing)), _sync("Database", lambda: _database(s.database))]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        odoo_rpc = OdooRpc(s.odoo, session) if s.odoo else None
        webapi = dataverse_api(session) if s.dataverse and dataverse_api else None
        checks += [
            await _run("Slack", s.slack, lambda: _slack(session, s.slack)),
            await _run("Teams", s.teams, lambda: _teams(session, s.teams)),
            await _run("Odoo", s.odoo, lambda: _odoo(odoo_rpc)),
            await _run("Dataverse", webapi, lambda: _dataverse(webapi)),
            await _run("Public URL", True, lambda: _public_url(session, s.public_url)),
            await _run("Odoo webhook", s.odoo, lambda: _odoo_rules(odoo_rpc, s)),
            await _run("Dataverse webhook", webapi, lambda: _dataverse_endpoint(webapi, s.public_url)),
        ]
    return checks


def render(checks: list[Check]) -> tuple[str, int]:
    """The report as text, and the exit code: 0 when nothing failed, 1 otherwise."""
    lines = []
    for check in checks:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[check.ok]
        lines.append(f"{mark}  {check.name}: {check.detail}")
        if check.ok is False and check.fix:
            lines.append(f"      fix: {check.fix}")
    failed = sum(check.ok is False for check in checks)
    lines.append(f"{failed} check(s) failed." if failed else "All checks passed.")
    return "\n".join(lines), 1 if failed else 0


def secrets_check(settings: Settings) -> Check:
    """Which secrets are set, by their variable names; never their values."""
    sections = {"SLACK": settings.slack, "ODOO": settings.odoo, "TEAMS": settings.teams, "DATAVERSE": settings.dataverse}
    states = {}
    for prefix, section in sections.items():
        if isinstance(section, BaseModel):
            for name, value in section:
                if isinstance(value, SecretStr):
                    states[f"HANDOFF_{prefix}__{name.upper()}"] = "set" if value.get_secret_value() else "missing"
    missing = [name for name, state in states.items() if state == "missing"]
    detail = ", ".join(f"{name} {state}" for name, state in states.items()) or "no chat or ERP configured"
    if missing:
        return Check("Secrets", False, detail, f"Set {', '.join(missing)} in the service's environment (see README › Install for your team).")
    return Check("Secrets", bool(states), detail, "" if states else "Configure Slack or Teams and Odoo or Dataverse (README › Install for your team).")


def _sync(name: str, check: Callable[[], str]) -> Check:
    try:
        return Check(name, True, check())
    except Failed as failure:
        return Check(name, False, str(failure), failure.fix)


async def _run(name: str, configured: object, check: Callable[[], Awaitable[str]]) -> Check:
    if not configured:
        return Check(name, None, "not configured")
    try:
        return Check(name, True, await check())
    except Failed as failure:
        return Check(name, False, str(failure), failure.fix)
    except HandoffError as error:
        # Handoff's own errors already name the cause and the next step.
        return Check(name, False, str(error), "Follow the step named above, then run `handoff doctor` again.")
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        return Check(name, False, f"unreachable ({type(error).__name__}: {error})", "Check the URL in the settings and the network path to it.")


def _routing(path: Path) -> str:
    from handoff.bot.routing_file import load_routing

    try:
        config = load_routing(path)
    except HandoffError as error:
        raise Failed(str(error), f"Fix {path} (`handoff routes check {path}` lists every problem), or point HANDOFF_ROUTING at the right file.") from None
    return f"{path}: {len(config.people)} people, {len(config.rules)} rules"


def _database(path: Path | str) -> str:
    if isinstance(path, str):
        return _postgres(path)
    if not path.exists():
        raise Failed(f"no database at {path}", "Run `handoff serve` once: it creates and migrates the database at HANDOFF_DATABASE.")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=5, isolation_level=None)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("BEGIN IMMEDIATE")  # takes the write lock, proving writes are possible, and writes nothing
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise Failed(f"{path} is not writable ({error})", f"Give the user running Handoff write access to {path} and its folder.") from None
    if version != len(MIGRATIONS):
        raise Failed(f"{path} is at schema version {version}, this Handoff needs {len(MIGRATIONS)}",
                     "Start `handoff serve` of this version once: it migrates the database on start.")
    return f"{path}: writable, schema version {version}"


def _postgres(url: str) -> str:
    try:
        version = pg.schema_version(url)
    except HandoffError as error:
        raise Failed(str(error), "Start PostgreSQL or correct HANDOFF_DATABASE, then run the doctor again.") from None
    if version != len(MIGRATIONS):
        raise Failed(f"{pg.redacted(url)} is at schema version {version}, this Handoff needs {len(MIGRATIONS)}",
                     "Start `handoff serve` of this version once: it migrates the database on start.")
    return f"{pg.redacted(url)}: reachable, schema version {version}"


async def _slack(session: aiohttp.ClientSession, slack: SlackSettings) -> str:
    # https://api.slack.com/methods/auth.test: errors are HTTP 200 with ok=false, except 429.
    headers = {"Authorization": f"Bearer {slack.bot_token.get_secret_value()}"}
    async with session.post(f"{slack.api_base_url}auth.test", headers=headers) as response:
        body = await response.json(content_type=None)
    if not body.get("ok"):
        raise Failed(f"auth.test answered {body.get('error', response.status)}",
                     "Copy the Bot User OAuth Token (Slack app > OAuth & Permissions, starts with xoxb-) into "
                     "HANDOFF_SLACK__BOT_TOKEN; if the app was removed, reinstall it from `handoff manifest slack`.")
    return f"signed in as {body.get('user')} in {body.get('team')} ({body.get('team_id')})"


async def _teams(session: aiohttp.ClientSession, teams: TeamsSettings) -> str:
    # Bot Framework client credentials (botframework-connector auth/authentication_constants.py): the botframework.com
    # tenant for multi-tenant bots, the bot's own tenant otherwise; scope <oauth_scope>/.default.
    tenant = teams.tenant_id if teams.app_type == "SingleTenant" else "botframework.com"
    form = {"grant_type": "client_credentials", "client_id": teams.app_id,
            "client_secret": teams.app_password.get_secret_value(), "scope": f"{teams.oauth_scope}/.default"}
    async with session.post(f"{teams.login_url.rstrip('/')}/{tenant}/oauth2/v2.0/token", data=form) as response:
        body = await response.json(content_type=None)
    if "access_token" not in body:
        raise Failed(f"no Bot Framework token for app {teams.app_id} ({body.get('error', response.status)})",
                     "Check HANDOFF_TEAMS__APP_ID and __APP_PASSWORD against the Azure Bot's app registration "
                     "(Entra admin center > App registrations > Certificates & secrets), and __APP_TYPE/__TENANT_ID.")
    return f"Bot Framework token issued to app {teams.app_id}"


async def _odoo(rpc: OdooRpc) -> str:
    api = await rpc.api()
    count = await rpc.call("purchase.order", "search_count", domain=[])
    return f"signed in over {api}; {count} purchase orders readable"


async def _dataverse(api: WebApi) -> str:
    who = await api.get("WhoAmI", {})
    return f"signed in as application user {who.get('UserId')}"


async def _public_url(session: aiohttp.ClientSession, public_url: str) -> str:
    url = f"{public_url.rstrip('/')}/healthz"
    fix = "Set HANDOFF_PUBLIC_URL to the https address Slack, Teams and the ERP reach Handoff at, and check that `handoff serve` runs behind it."
    try:
        async with session.get(url) as response:
            status = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        raise Failed(f"GET {url} failed ({type(error).__name__}: {error})", fix) from None
    if status != 200:
        raise Failed(f"GET {url} answered HTTP {status}", fix)
    return f"GET {url} answered 200"


async def _odoo_rules(rpc: OdooRpc, settings: Settings) -> str:
    expected = odoo_rules.webhook_url(settings.public_url, settings.odoo)
    found = []
    for model in settings.odoo.models:
        status = await odoo_rules.rule_status(rpc, model)
        if status.webhook_url is None:
            raise Failed(f"no Handoff automation rule on {model}", "Run `handoff odoo install-rules`.")
        if status.webhook_url != expected:
            raise Failed(f"the rule on {model} posts to {odoo_rules.redact(status.webhook_url)}, not {odoo_rules.redact(expected)}",
                         "Run `handoff odoo install-rules` to point it at HANDOFF_PUBLIC_URL with the current webhook secret.")
        found.append(f"{model} (rule #{status.rule_id})")
    return f"automation rule posts to {odoo_rules.redact(expected)}: {', '.join(found)}"


async def _dataverse_endpoint(api: WebApi, public_url: str) -> str:
    expected = dataverse_register.webhook_url(public_url)
    endpoint = await dataverse_register.find_endpoint(api)
    if endpoint is None:
        raise Failed("no Handoff service endpoint", "Run `handoff dataverse register`.")
    if endpoint.url != expected:
        raise Failed(f"the service endpoint posts to {endpoint.url}, not {expected}", "Run `handoff dataverse register`.")
    return f"service endpoint {endpoint.id} posts to {expected}"
