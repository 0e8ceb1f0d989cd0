"""Route facts from an event file, for `handoff routes explain`: an ERP webhook body or the facts themselves."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from handoff.bot.core.errors import ConfigError
from handoff.bot.core.route import RouteFacts


def _dataverse_amount(body: dict) -> Decimal | None:
    # Update steps carry only changed columns in Target; the post image has the full picture when registered.
    for image in body.get("PostEntityImages") or []:
        for attribute in (image.get("value") or {}).get("Attributes") or []:
            if attribute.get("key") == "totalamount":
                value = attribute.get("value")
                return Decimal(str(value.get("Value") if isinstance(value, dict) else value))
    return None


def facts_from_event(path: Path) -> RouteFacts:
    try:
        body = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"Can't read {path} as JSON ({error}). Pass a webhook body or a JSON object of route facts.") from None
    return facts_from_body(body, str(path))


def facts_from_body(body: object, path: str) -> RouteFacts:
    """Route facts from parsed JSON; `path` names where it came from in error messages."""
    if not isinstance(body, dict):
        raise ConfigError(f"{path} holds JSON but not an object. Pass a webhook body or a JSON object of route facts.")
    if "_model" in body:  # Odoo "Send Webhook Notification" body
        amount = body.get("amount_total")
        return RouteFacts(source="odoo", model=body["_model"], amount=None if amount in (None, False) else Decimal(str(amount)))
    if "PrimaryEntityName" in body:  # Dataverse RemoteExecutionContext
        return RouteFacts(source="dataverse", model=body["PrimaryEntityName"], amount=_dataverse_amount(body))
    try:
        return RouteFacts.model_validate(body)
    except ValueError as error:
        raise ConfigError(
            f"{path} is neither an Odoo nor a Dataverse webhook body, nor route facts ({error}). "
            'Route facts look like {"source": "odoo", "model": "purchase.order", "amount": 12500, "region": "EU"}.'
        ) from None
