"""Teams message text over real HTTP: our suggested commands render as code, ERP and people's text renders as typed."""

from __future__ import annotations

from markdown_it import MarkdownIt

from handoff.bot.fakes.stack import local_stack
from handoff.bot.fakes.waiting import wait_until

# Teams renders message text with textFormat "markdown"; a CommonMark parser shows what a client would.
commonmark = MarkdownIt("commonmark")
HOSTILE_VENDOR = "`Acme` <b>*Supplies*</b>"


async def test_a_teams_dead_letter_alert_shows_its_commands_as_code(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", chat="teams", uninstalled={"fiona"}) as stack:
        await stack.send_order("PO-000123")
        card = await stack.teams.card("procurement", "PO-000123")

        await stack.teams.invoke("dana", card, "handoff.approve")  # stage 2 is Fiona's 1:1, which Teams refuses

        alert = (await wait_until(lambda: [t for t in stack.teams.texts("ops") if t.startswith("Dead letter")], what="the alert"))[-1]
        html = commonmark.render(alert)
        assert "Next: fix the cause, then <code>handoff outbox retry " in html, "our command is code, not `literal backticks`"
        assert "`" not in html


async def test_a_teams_answer_suggests_commands_as_code_and_echoes_the_question_as_typed(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", chat="teams", clock=clock) as stack:
        partner = stack.odoo.db.records["purchase.order"][stack.orders["P00043"]]["partner_id"]
        stack.odoo.set_field("res.partner", partner, name=HOSTILE_VENDOR)
        await stack.send_order("P00043")
        await stack.teams.card("procurement", "P00043")

        await stack.teams.say("dana", "status `nothing` *like* [this](https://evil.example)")
        await stack.teams.say("dana", "status P00043")

        missed = (await wait_until(lambda: [t for t in stack.teams.texts("dana") if "No request" in t], what="the miss"))[-1]
        html = commonmark.render(missed)
        assert "<code>status P00042</code>" in html and "<code>pending</code>" in html, "suggested commands are code"
        assert "“'nothing' *like* [this](https://evil.example)”" in html, "the question shows as typed (its quotes straightened)"
        found = (await wait_until(lambda: [t for t in stack.teams.texts("dana") if t.startswith("P00043")], what="the answer"))[-1]
        html = commonmark.render(found)
        assert "P00043 — \u02cbAcme\u02cb &lt;b&gt;*Supplies*&lt;/b&gt;, " in html, "the ERP's vendor name shows as typed"
        for rendered in map(commonmark.render, (missed, found)):
            assert "<a " not in rendered and "<em>" not in rendered and "<b>" not in rendered
