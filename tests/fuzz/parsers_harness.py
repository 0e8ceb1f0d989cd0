"""Coverage-guided fuzzing (atheris, libFuzzer) of Handoff's pure parsers: the bytes strangers can send us.

    python tests/fuzz/parsers_harness.py TARGET [libFuzzer flags and corpus dirs]
    python tests/fuzz/parsers_harness.py odoo -max_total_time=300    # seeded from tests/fixtures/odoo

Targets: odoo (Odoo webhook body), dataverse (Dataverse RemoteExecutionContext), routing (routing TOML loader),
escape (Slack mrkdwn and Adaptive Card escaping). A parser may refuse input only with its documented error
(BadEvent/IgnoredEvent, ConfigError); any other exception, or escaped text that is not inert, is a crash that
libFuzzer reports with the input that caused it (saved as crash-<sha1>).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["handoff"]):
    from handoff.bot.core.errors import BadEvent, ConfigError, IgnoredEvent
    from handoff.bot.routing_file import load_routing
    from handoff.cards.escape import escape_adaptive, escape_mrkdwn, truncate
    from handoff.connectors import dataverse, odoo
    from handoff.connectors.odoo import OdooSettings

NOW = datetime(2024, 6, 14, 9, 30, tzinfo=timezone.utc)
ODOO = OdooSettings(url="http://127.0.0.1:8069", database="fuzz", login="fuzz", api_key="fuzz", webhook_secret="fuzz")
DATAVERSE = dataverse.DataverseSettings(url="https://fuzz.crm.dynamics.com", tenant_id="t", client_id="c", client_secret="s",
                                       webhook_key="fuzz-key")
ROUTING_FILE = Path(tempfile.mkdtemp(prefix="handoff-fuzz-")) / "routing.toml"
# After escaping, these may appear only behind a backslash (Adaptive) or not at all (Slack).
ADAPTIVE_ACTIVE = re.compile(r"(?<!\\)(?:\\\\)*[*_\[\]()~`<>!]")
SLACK_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


STRUCTURED = b"\x00"
# Words the parsers look for, so structured inputs reach past "not JSON" and "missing field".
WORDS = ["_model", "_id", "write_date", "purchase.order", "state", "amount_total", "PrimaryEntityName", "PrimaryEntityId",
         "purchaseorder", "InputParameters", "PostEntityImages", "Target", "Attributes", "FormattedValues", "key", "value",
         "__type", "OptionSetValue:x", "Money:x", "EntityReference:x", "Value", "Id", "LogicalName", "OperationId",
         "RequestId", "RowVersion", "0c5d3e2a-1b4f-ef11-bfe3-000d3a6a1234", "2024-06-14 11:19:58"]


def json_value(provider: atheris.FuzzedDataProvider, depth: int = 0) -> object:
    kind = provider.ConsumeIntInRange(0, 8 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return provider.ConsumeBool()
    if kind == 2:
        return provider.ConsumeIntInRange(-(2**63), 2**64)
    if kind == 3:
        return provider.ConsumeRegularFloat()
    if kind in (4, 5):
        return provider.PickValueInList(WORDS) if provider.ConsumeBool() else provider.ConsumeUnicode(20)
    if kind == 6:
        return [json_value(provider, depth + 1) for _ in range(provider.ConsumeIntInRange(0, 4))]
    return {json_value_key(provider): json_value(provider, depth + 1) for _ in range(provider.ConsumeIntInRange(0, 6))}


def json_value_key(provider: atheris.FuzzedDataProvider) -> str:
    return provider.PickValueInList(WORDS) if provider.ConsumeIntInRange(0, 3) else provider.ConsumeUnicode(8)


def body(data: bytes) -> bytes:
    """The bytes as sent, or (behind a NUL marker) JSON built from them: byte mutations rarely keep JSON valid."""
    if not data.startswith(STRUCTURED):
        return data
    provider = atheris.FuzzedDataProvider(data[1:])
    document = {json_value_key(provider): json_value(provider) for _ in range(provider.ConsumeIntInRange(0, 10))}
    return json.dumps(document).encode("utf-8", "surrogatepass")


def odoo_webhook(data: bytes) -> None:
    try:
        event = odoo.parse_webhook(body(data), ODOO, NOW)
    except (BadEvent, IgnoredEvent):
        return
    assert event.ref.record_id.isdigit(), event.ref


def dataverse_webhook(data: bytes) -> None:
    try:
        dataverse.parse_webhook(body(data), {"code": "fuzz-key"}, {}, DATAVERSE, NOW)
    except (BadEvent, IgnoredEvent):
        return


def routing(data: bytes) -> None:
    ROUTING_FILE.write_bytes(data)
    try:
        load_routing(ROUTING_FILE)
    except ConfigError:
        return


def escape(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    limit = provider.ConsumeIntInRange(0, 200)
    text = provider.ConsumeUnicodeNoSurrogates(len(data))
    slack = escape_mrkdwn(text)
    assert "<" not in slack and ">" not in slack and not SLACK_ENTITY.search(slack), (text, slack)
    adaptive = escape_adaptive(text)
    unescaped = re.sub(r"\\.", "", adaptive, flags=re.S)
    assert not ADAPTIVE_ACTIVE.search(unescaped) and "{{" not in adaptive, (text, adaptive)
    assert len(truncate(slack, limit)) <= max(limit, 1), (slack, limit)


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SEEDS = {"odoo": [FIXTURES / "odoo" / "webhook_purchase_order.json"],
         "dataverse": [FIXTURES / "dataverse" / "webhook_update_purchaseorder.json"],
         "routing": [Path(__file__).resolve().parents[2] / "bot" / "samples" / "routing.toml"], "escape": []}


def seed_corpus(name: str) -> str:
    corpus = Path(tempfile.mkdtemp(prefix=f"handoff-fuzz-{name}-"))
    for seed in SEEDS[name]:
        (corpus / seed.name).write_bytes(seed.read_bytes())
    (corpus / "structured").write_bytes(STRUCTURED + bytes(range(256)))
    return str(corpus)


TARGETS = {"odoo": odoo_webhook, "dataverse": dataverse_webhook, "routing": routing, "escape": escape}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags, e.g. -max_total_time=60] [corpus dirs]")
    name = argv.pop(1)
    if not any(not arg.startswith("-") for arg in argv[1:]):
        # json.loads and tomllib give no coverage feedback, so start from a real body, not from nothing. New inputs
        # go to a temporary corpus, never into the repository.
        argv.append(seed_corpus(name))
    atheris.Setup(argv, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
