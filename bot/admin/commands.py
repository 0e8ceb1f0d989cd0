"""The admin commands: `handoff odoo install-rules`, `handoff dataverse register`, `handoff doctor`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import aiohttp

from handoff.bot.config import load_settings
from handoff.bot.core.errors import ConfigError
from handoff.bot.core.retry import Backoff


def register(sub: argparse._SubParsersAction) -> None:
    """Add the admin commands to `handoff`'s subcommands."""
    odoo = sub.add_parser("odoo", help="set up Odoo for Handoff").add_subparsers(dest="odoo_command", required=True)
    rules = odoo.add_parser("install-rules", help="create or update the automation rule that sends orders awaiting approval to Handoff")
    rules.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    rules.set_defaults(func=cmd_odoo_install_rules)

    dataverse = sub.add_parser("dataverse", help="set up Dataverse for Handoff").add_subparsers(dest="dataverse_command", required=True)
    hook = dataverse.add_parser("register", help="register the webhook and the Update steps that send status changes to Handoff")
    hook.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    hook.set_defaults(func=cmd_dataverse_register)

    doctor = sub.add_parser("doctor", help="check settings, secrets, database, Slack, Teams, the ERPs, the public URL and the webhooks")
    doctor.set_defaults(func=cmd_doctor)


def cmd_odoo_install_rules(args: argparse.Namespace) -> int:
    from handoff.bot.admin.odoo_rules import install_rules
    from handoff.connectors.odoo_rpc import OdooRpc

    settings = load_settings()
    odoo = _required(settings.odoo, "Odoo", "HANDOFF_ODOO__URL, __DATABASE, __LOGIN, __API_KEY and __WEBHOOK_SECRET")

    async def run() -> list[str]:
        async with aiohttp.ClientSession() as session:
            return await install_rules(OdooRpc(odoo, session), odoo, settings.public_url, dry_run=args.dry_run)

    print("\n".join(asyncio.run(run())))
    return 0


def cmd_dataverse_register(args: argparse.Namespace) -> int:
    from handoff.bot.admin.dataverse_register import register as register_webhook

    settings = load_settings()
    dataverse = _required(settings.dataverse, "Dataverse",
                          "HANDOFF_DATAVERSE__URL, __TENANT_ID, __CLIENT_ID, __CLIENT_SECRET and __WEBHOOK_KEY")

    async def run() -> list[str]:
        async with aiohttp.ClientSession() as session:
            return await register_webhook(dataverse_api(dataverse)(session), dataverse, settings.public_url, dry_run=args.dry_run)

    print("\n".join(asyncio.run(run())))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from handoff.bot.admin.doctor import diagnose, render

    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"FAIL  Settings: {error}\n      fix: set the variables named above, then run `handoff doctor` again.")
        return 1
    print(f"ok    Settings: parsed (public URL {settings.public_url})")
    text, code = render(asyncio.run(diagnose(settings, dataverse_api(settings.dataverse) if settings.dataverse else None)))
    print(text)
    return code


def dataverse_api(dataverse: Any):
    """A factory of Web API clients for one environment, sharing one token cache."""
    from handoff.connectors.dataverse_auth import MsalTokenProvider
    from handoff.connectors.dataverse_webapi import WebApi

    tokens = MsalTokenProvider(dataverse)
    return lambda session: WebApi(dataverse.url, session, tokens, Backoff(), asyncio.sleep)


def _required(value: Any, what: str, variables: str) -> Any:
    if value is None:
        raise ConfigError(f"{what} is not configured, so there is nothing to set up. Set {variables}, then run this again.")
    return value
