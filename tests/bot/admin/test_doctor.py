"""`handoff doctor` against the local stack (Handoff, fake Odoo, fake Slack) plus fake Dataverse and Bot Framework login."""

from __future__ import annotations

import asyncio
import contextlib
import io

import aiohttp
import pytest

from handoff.bot.admin.dataverse_register import register
from handoff.bot.admin.doctor import diagnose, render
from handoff.bot.admin.odoo_rules import install_rules
from handoff.bot.channels.slack import SlackSettings
from handoff.bot.channels.teams_auth import TeamsSettings
from handoff.bot.cli import main
from handoff.bot.config import Settings
from handoff.bot.fakes.entra import FakeEntra
from handoff.bot.fakes.stack import SAMPLE_ROUTING, SIGNING_SECRET, WEBHOOK_SECRET, local_stack
from handoff.connectors.odoo import OdooSettings
from handoff.connectors.odoo_rpc import OdooRpc

BOT_APP_ID = "0d8b1c52-3f7e-4a11-9c3d-6e2f10a4b7aa"
BOT_PASSWORD = "bot-framework-password"


@pytest.fixture
async def stack(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as stack:
        yield stack


@pytest.fixture
async def teams(aiohttp_server, clock):
    entra = FakeEntra(clock, tenant="botframework.com")
    entra.register(BOT_APP_ID, BOT_PASSWORD)
    server = await aiohttp_server(entra.app)
    return TeamsSettings(app_id=BOT_APP_ID, app_password=BOT_PASSWORD, login_url=str(server.make_url("")).rstrip("/"))


def settings_for(stack, *, slack_token: str | None = None) -> Settings:
    return Settings(
        database=stack.store.path, routing=SAMPLE_ROUTING, public_url=stack.handoff_url,
        slack=SlackSettings(bot_token=slack_token or stack.slack.token, signing_secret=SIGNING_SECRET, api_base_url=f"{stack.urls['slack']}/api/"),
        odoo=OdooSettings(url=stack.urls["odoo"], database=stack.odoo.database, login=stack.odoo.api_login, api_key=stack.odoo.api_key,
                          webhook_secret=WEBHOOK_SECRET),
    )


async def install_odoo_rule(settings: Settings) -> None:
    async with aiohttp.ClientSession() as session:
        await install_rules(OdooRpc(settings.odoo, session), settings.odoo, settings.public_url)


def verdicts(checks) -> dict[str, bool | None]:
    return {check.name: check.ok for check in checks}


async def test_a_healthy_install_passes_every_check(stack, teams, dataverse):
    settings = settings_for(stack)
    await install_odoo_rule(settings)
    await register(dataverse.api(), dataverse.settings, settings.public_url)

    settings = settings.model_copy(update={"teams": teams, "dataverse": dataverse.settings})

    checks = await diagnose(settings, lambda session: dataverse.api())
    text, code = render(checks)

    assert code == 0, text
    assert verdicts(checks) == {name: True for name in ("Secrets", "Routing", "Database", "Slack", "Teams", "Odoo", "Dataverse",
                                                        "Public URL", "Odoo webhook", "Dataverse webhook")}
    assert text.endswith("All checks passed.")
    for secret in (stack.slack.token, SIGNING_SECRET, WEBHOOK_SECRET, stack.odoo.api_key, BOT_PASSWORD, "dataverse-hook-key"):
        assert secret not in text
    assert "HANDOFF_SLACK__BOT_TOKEN set" in text and "HANDOFF_TEAMS__APP_PASSWORD set" in text


async def test_broken_slack_token_odoo_down_and_missing_rule_each_fail_with_a_fix(stack):
    settings = settings_for(stack, slack_token="xoxb-revoked")

    no_rule = {c.name: c for c in await diagnose(settings)}
    stack.odoo.down = True
    odoo_down = {c.name: c for c in await diagnose(settings)}

    assert (no_rule["Slack"].ok, no_rule["Slack"].detail) == (False, "auth.test answered invalid_auth")
    assert "HANDOFF_SLACK__BOT_TOKEN" in no_rule["Slack"].fix
    assert (no_rule["Odoo"].ok, no_rule["Odoo webhook"].ok) == (True, False)
    assert (no_rule["Odoo webhook"].detail, no_rule["Odoo webhook"].fix) == ("no Handoff automation rule on purchase.order",
                                                                            "Run `handoff odoo install-rules`.")
    assert odoo_down["Odoo"].ok is False and "HTTP 503" in odoo_down["Odoo"].detail
    assert (no_rule["Teams"].ok, no_rule["Dataverse"].ok) == (None, None)
    text, code = render(list(odoo_down.values()))
    assert code == 1 and text.endswith("3 check(s) failed.")  # Slack, Odoo and the Odoo webhook, nothing else
    assert "xoxb-revoked" not in text


async def test_a_rule_pointing_elsewhere_and_an_unreachable_public_url_are_reported(stack):
    settings = settings_for(stack)
    await install_odoo_rule(settings.model_copy(update={"public_url": "https://old.example.com"}))
    moved = settings.model_copy(update={"public_url": "http://127.0.0.1:9"})

    checks = {c.name: c for c in await diagnose(moved)}

    assert checks["Public URL"].ok is False and checks["Public URL"].detail.startswith("GET http://127.0.0.1:9/healthz failed")
    assert "HANDOFF_PUBLIC_URL" in checks["Public URL"].fix
    assert checks["Odoo webhook"].detail == ("the rule on purchase.order posts to https://old.example.com/webhooks/odoo?key=***, "
                                             "not http://127.0.0.1:9/webhooks/odoo?key=***")


async def test_the_command_prints_set_or_missing_and_exits_1_on_failure(stack, monkeypatch, tmp_path):
    monkeypatch.setenv("HANDOFF_DATABASE", str(tmp_path / "absent.db"))
    monkeypatch.setenv("HANDOFF_ROUTING", str(SAMPLE_ROUTING))
    monkeypatch.setenv("HANDOFF_PUBLIC_URL", stack.handoff_url)
    monkeypatch.setenv("HANDOFF_SLACK__BOT_TOKEN", stack.slack.token)
    monkeypatch.setenv("HANDOFF_SLACK__SIGNING_SECRET", "")
    monkeypatch.setenv("HANDOFF_SLACK__API_BASE_URL", f"{stack.urls['slack']}/api/")
    out = io.StringIO()

    with contextlib.redirect_stdout(out):
        # The command runs its own event loop, as from a shell; the fakes keep serving on this one.
        code = await asyncio.to_thread(main, ["doctor"])

    text = out.getvalue()
    assert code == 1
    assert "HANDOFF_SLACK__BOT_TOKEN set, HANDOFF_SLACK__SIGNING_SECRET missing" in text
    assert f"FAIL  Database: no database at {tmp_path / 'absent.db'}" in text
    assert "ok    Slack: signed in as" in text
    assert "skip  Odoo: not configured" in text
    assert stack.slack.token not in text
