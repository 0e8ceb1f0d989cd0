"""`handoff demo --source … --chat …`: the same story from either ERP on either chat, each ending with a verified log."""

from __future__ import annotations

import io

import pytest

from handoff.bot.cli import build_parser
from handoff.bot.demo import run_demo

MIXES = {
    ("dataverse", "teams"): ("PO-000123", "approved", "rejected"),
    ("dataverse", "slack"): ("PO-000123", "approved", "rejected"),
    ("odoo", "teams"): ("P00042", "purchase", "cancel"),
}


@pytest.mark.parametrize(("source", "chat"), list(MIXES))
async def test_each_mix_tells_the_whole_story_and_ends_verified(source, chat):
    reference, approved, rejected = MIXES[(source, chat)]
    out = io.StringIO()

    assert await run_demo(out=out, source=source, chat=chat) == 0

    text = out.getvalue()
    for beat in ("HTTP 200 duplicate; still 1 card", "You can't approve your own request", f"state “{approved}”",
                 f"What changed for {reference}", "not counted", "version 2", f"state “{rejected}”",
                 "Duplicate of an earlier order", f"{reference} — Acme Supplies", "hash chain intact"):
        assert beat in text, f"{source} → {chat}: the story lacks “{beat}”"
    assert "\\(" not in text  # Teams' markdown escapes are not shown to the reader


def test_the_demo_command_takes_the_source_and_the_chat():
    args = build_parser().parse_args(["demo", "--source", "dataverse", "--chat", "teams"])
    assert (args.source, args.chat, args.keep_running) == ("dataverse", "teams", False)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--chat", "whatsapp"])
