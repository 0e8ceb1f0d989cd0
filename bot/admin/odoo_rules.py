"""`handoff odoo install-rules`: the Odoo automation rule whose webhook action tells Handoff an order awaits approval.

Sources (odoo/odoo): `addons/base_automation/models/base_automation.py` (17.0 rework: `trigger='on_state_set'`,
`trigger_field_ids`, `trg_selection_field_id` on `ir.model.fields.selection`, `filter_domain` "[('state', '=', 'x')]",
`action_server_ids` One2many of `ir.actions.server` by `base_automation_id`); `odoo/addons/base/models/ir_actions.py`
(`state='webhook'`, `webhook_url`, `webhook_field_ids`; see protocols.md, "Send Webhook Notification").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from handoff.bot.core.errors import ErpRefused
from handoff.connectors.odoo import OdooSettings
from handoff.connectors.odoo_rpc import OdooRpc

log = logging.getLogger(__name__)

# What the webhook body carries: Handoff re-reads the order anyway, these make routing possible without a read.
WEBHOOK_FIELDS = ("amount_total", "currency_id", "date_order", "name", "partner_id", "state", "user_id", "write_date")
AWAITING_STATE = "to approve"
ADMIN_GROUP = "Administration / Settings"


@dataclass(frozen=True)
class RuleStatus:
    """One model's rule as Odoo has it now: absent, or present with the webhook URL its action posts to."""

    model: str
    rule_id: int | None
    action_id: int | None
    webhook_url: str | None
    field_ids: frozenset[int]


def webhook_url(public_url: str, settings: OdooSettings) -> str:
    """The URL the rule posts to; the secret rides in the query because Odoo's webhook action sends no auth header."""
    return f"{public_url.rstrip('/')}/webhooks/odoo?key={settings.webhook_secret.get_secret_value()}"


def redact(url: str | None) -> str:
    """A webhook URL fit to print: the key replaced by stars."""
    if not url:
        return "(none)"
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="key=***" if parts.query else ""))


def rule_name(model: str) -> str:
    return f"Handoff: {model} awaiting approval"


async def rule_status(rpc: OdooRpc, model: str) -> RuleStatus:
    """The Handoff rule for `model`, found by name, and its webhook action."""
    model_id = await _model_id(rpc, model)
    rules = await rpc.call("base.automation", "search_read", domain=[["model_id", "=", model_id], ["name", "=", rule_name(model)]],
                           fields=["action_server_ids"], limit=1)
    if not rules:
        return RuleStatus(model, None, None, None, frozenset())
    actions = await rpc.call("ir.actions.server", "read", ids=rules[0]["action_server_ids"], fields=["state", "webhook_url", "webhook_field_ids"])
    webhook = next((a for a in actions if a["state"] == "webhook"), None)
    if webhook is None:
        return RuleStatus(model, rules[0]["id"], None, None, frozenset())
    return RuleStatus(model, rules[0]["id"], webhook["id"], webhook["webhook_url"] or None, frozenset(webhook["webhook_field_ids"]))


async def install_rules(rpc: OdooRpc, settings: OdooSettings, public_url: str, *, dry_run: bool = False) -> list[str]:
    """Create or update one rule per configured model; returns one line per model saying what was (or would be) done."""
    url = webhook_url(public_url, settings)
    lines = []
    for model in settings.models:
        try:
            lines.append(await _install(rpc, model, url, dry_run))
        except ErpRefused as error:
            raise ErpRefused(
                f"Odoo refused to set up the automation rule on {model} for the API user {settings.login!r} ({error}). "
                f"Managing automation rules needs the {ADMIN_GROUP} group: in Odoo open Settings > Users & Companies > "
                f"Users > {settings.login}, set Administration to Settings, save, and run `handoff odoo install-rules` again."
            ) from error
    return lines


async def _install(rpc: OdooRpc, model: str, url: str, dry_run: bool) -> str:
    fields = await _field_ids(rpc, model, (*WEBHOOK_FIELDS,))
    status = await rule_status(rpc, model)
    wanted = frozenset(fields.values())
    shown = redact(url)
    if status.action_id is not None and status.webhook_url == url and status.field_ids == wanted:
        return f"{model}: already installed (rule #{status.rule_id} posts to {shown})"
    verb = "would " if dry_run else ""
    action_values: dict[str, Any] = {"webhook_url": url, "webhook_field_ids": [[6, 0, sorted(wanted)]]}
    if status.action_id is not None:
        if not dry_run:
            await rpc.call("ir.actions.server", "write", ids=[status.action_id], vals=action_values)
        log.info("odoo.rule_updated", extra={"model": model, "rule_id": status.rule_id, "dry_run": dry_run})
        return f"{model}: {verb}update rule #{status.rule_id} to post to {shown} (it posted to {redact(status.webhook_url)})"
    if dry_run:
        return f"{model}: would create the rule \"{rule_name(model)}\" posting to {shown}"
    model_id = await _model_id(rpc, model)
    rule_id = status.rule_id
    if rule_id is None:
        selection = await rpc.call("ir.model.fields.selection", "search",
                                   domain=[["field_id", "=", fields["state"]], ["value", "=", AWAITING_STATE]], limit=1)
        if not selection:
            raise ErpRefused(f"Odoo's {model}.state has no {AWAITING_STATE!r} value, so no rule can fire on it. Is the Purchase app installed?")
        rule_id = await _create(rpc, "base.automation", {
            "name": rule_name(model), "model_id": model_id, "trigger": "on_state_set", "active": True,
            "trigger_field_ids": [[6, 0, [fields["state"]]]], "trg_selection_field_id": selection[0],
            # Odoo computes the same domain from the selection value; set it so older 17.x builds match too.
            "filter_domain": f"[('state', '=', '{AWAITING_STATE}')]",
        })
    await _create(rpc, "ir.actions.server", {
        "name": f"Handoff: send {model} to Handoff", "model_id": model_id, "state": "webhook", "usage": "base_automation",
        "base_automation_id": rule_id, **action_values,
    })
    log.info("odoo.rule_created", extra={"model": model, "rule_id": rule_id})
    return f"{model}: created rule #{rule_id} \"{rule_name(model)}\" posting to {shown}"


async def _model_id(rpc: OdooRpc, model: str) -> int:
    found = await rpc.call("ir.model", "search", domain=[["model", "=", model]], limit=1)
    if not found:
        raise ErpRefused(f"Odoo has no model {model!r}. Install the app that provides it (Purchase for purchase.order), then retry.")
    return found[0]


async def _field_ids(rpc: OdooRpc, model: str, names: tuple[str, ...]) -> dict[str, int]:
    rows = await rpc.call("ir.model.fields", "search_read", domain=[["model", "=", model], ["name", "in", list(names)]], fields=["name"])
    found = {row["name"]: row["id"] for row in rows}
    missing = sorted(set(names) - set(found))
    if missing:
        raise ErpRefused(f"Odoo's {model} lacks the fields {', '.join(missing)} that the webhook must carry. Check the Odoo version (17+).")
    return found


async def _create(rpc: OdooRpc, model: str, values: dict[str, Any]) -> int:
    if await rpc.api() == "json2":
        created = await rpc.call(model, "create", vals_list=[values])
    else:
        # execute_kw's create wants its values as the first positional argument (odoo/service/model.py special-cases
        # `create` on args[0]), and OdooRpc sends `ids` in that place.
        created = await rpc.call(model, "create", ids=[values])  # type: ignore[list-item]
    return created[0] if isinstance(created, list) else created
