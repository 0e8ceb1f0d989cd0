"""`handoff odoo install-rules` against the fake Odoo over loopback HTTP, on JSON-2 (19) and JSON-RPC (17)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from handoff.bot.admin.odoo_rules import install_rules, rule_status
from handoff.bot.cli import main
from handoff.bot.core.errors import ErpRefused
from handoff.bot.fakes.odoo import FakeOdoo
from handoff.connectors.odoo import OdooSettings
from handoff.connectors.odoo_rpc import OdooRpc

PUBLIC_URL = "https://handoff.example.com"
SECRET = "s3cret-webhook-key"


@pytest.fixture(params=[19, 17], ids=["json2", "jsonrpc"])
async def odoo(request, aiohttp_server):
    fake = FakeOdoo(version=request.param)
    server = await aiohttp_server(fake.app)
    settings = OdooSettings(url=str(server.make_url("")), database=fake.database, login=fake.api_login,
                            api_key=fake.api_key, webhook_secret=SECRET)
    async with aiohttp.ClientSession() as session:
        yield fake, settings, OdooRpc(settings, session)


async def test_first_run_creates_a_rule_that_fires_when_an_order_is_set_to_approve(odoo):
    fake, settings, rpc = odoo

    lines = await install_rules(rpc, settings, PUBLIC_URL)

    (rule,) = fake.automation_rules()
    assert lines == [f"purchase.order: created rule #{rule['id']} \"Handoff: purchase.order awaiting approval\" "
                     f"posting to {PUBLIC_URL}/webhooks/odoo?key=***"]
    assert (rule["trigger"], rule["filter_domain"], rule["active"]) == ("on_state_set", "[('state', '=', 'to approve')]", True)
    state_value = fake.db.read("ir.model.fields.selection", [rule["trg_selection_field_id"]], ["value"])[0]["value"]
    assert state_value == "to approve"
    (action,) = rule["actions"]
    assert (action["state"], action["webhook_url"]) == ("webhook", f"{PUBLIC_URL}/webhooks/odoo?key={SECRET}")
    sent = {f["name"] for f in fake.db.read("ir.model.fields", action["webhook_field_ids"], ["name"])}
    assert sent == {"amount_total", "currency_id", "date_order", "name", "partner_id", "state", "user_id", "write_date"}


async def test_second_run_changes_nothing(odoo):
    fake, settings, rpc = odoo
    await install_rules(rpc, settings, PUBLIC_URL)
    before = json.dumps(fake.automation_rules(), sort_keys=True)

    lines = await install_rules(rpc, settings, PUBLIC_URL)

    assert lines[0].startswith("purchase.order: already installed (rule #")
    assert json.dumps(fake.automation_rules(), sort_keys=True) == before


async def test_a_new_public_url_updates_the_rule_in_place(odoo):
    fake, settings, rpc = odoo
    await install_rules(rpc, settings, PUBLIC_URL)

    lines = await install_rules(rpc, settings, "https://approvals.example.org/")

    (rule,) = fake.automation_rules()
    assert rule["actions"][0]["webhook_url"] == f"https://approvals.example.org/webhooks/odoo?key={SECRET}"
    assert lines == [f"purchase.order: update rule #{rule['id']} to post to https://approvals.example.org/webhooks/odoo?key=*** "
                     f"(it posted to {PUBLIC_URL}/webhooks/odoo?key=***)"]
    assert (await rule_status(rpc, "purchase.order")).webhook_url == rule["actions"][0]["webhook_url"]


async def test_dry_run_says_what_it_would_do_and_writes_nothing(odoo):
    fake, settings, rpc = odoo

    lines = await install_rules(rpc, settings, PUBLIC_URL, dry_run=True)

    assert lines == [f"purchase.order: would create the rule \"Handoff: purchase.order awaiting approval\" posting to "
                     f"{PUBLIC_URL}/webhooks/odoo?key=***"]
    assert fake.automation_rules() == []


async def test_an_api_user_without_settings_rights_is_told_which_group_it_needs(odoo):
    fake, settings, rpc = odoo
    fake.set_settings_admin(False)

    with pytest.raises(ErpRefused) as refused:
        await install_rules(rpc, settings, PUBLIC_URL)

    assert "needs the Administration / Settings group" in str(refused.value)
    assert "Users > handoff-bot, set Administration to Settings" in str(refused.value)
    assert SECRET not in str(refused.value)
    assert fake.automation_rules() == []


async def test_the_command_installs_from_the_environment_and_says_so(odoo, monkeypatch, capsys):
    fake, settings, _ = odoo
    for name, value in {"URL": settings.url, "DATABASE": fake.database, "LOGIN": fake.api_login, "API_KEY": fake.api_key,
                        "WEBHOOK_SECRET": SECRET}.items():
        monkeypatch.setenv(f"HANDOFF_ODOO__{name}", value)
    monkeypatch.setenv("HANDOFF_PUBLIC_URL", PUBLIC_URL)

    # The command runs its own event loop, as from a shell; the fake keeps serving on this one.
    first = await asyncio.to_thread(main, ["odoo", "install-rules"])
    second = await asyncio.to_thread(main, ["odoo", "install-rules"])

    lines = capsys.readouterr().out.splitlines()
    assert (first, second, len(fake.automation_rules())) == (0, 0, 1)
    assert lines[0].startswith("purchase.order: created rule #") and lines[1].startswith("purchase.order: already installed")
    assert SECRET not in "\n".join(lines)


async def test_the_command_without_odoo_settings_names_the_variables(monkeypatch, capsys):
    assert main(["odoo", "install-rules"]) == 2
    assert capsys.readouterr().err == ("handoff: Odoo is not configured, so there is nothing to set up. Set HANDOFF_ODOO__URL, "
                                       "__DATABASE, __LOGIN, __API_KEY and __WEBHOOK_SECRET, then run this again.\n")
