"""ERP text in composed sentences, over real HTTP: operations and approvers see it as typed, our commands as code."""

from __future__ import annotations

from handoff.bot.fakes.stack import SAMPLE_ROUTING, local_stack
from handoff.bot.fakes.waiting import wait_until
from handoff.bot.routing_file import load_routing

OPS = "C0OPS"


async def test_the_no_route_notice_keeps_our_command_as_code_and_the_business_unit_as_typed(tmp_path):
    sample = load_routing(SAMPLE_ROUTING)
    # Without the global tiers only regional and local rules are left, and an unknown business unit matches none.
    routing = sample.model_copy(update={"rules": tuple(r for r in sample.rules if r.regions or r.business_units)})
    async with local_stack(tmp_path / "handoff.db", routing=routing) as stack:
        company = stack.odoo.db.records["purchase.order"][stack.orders["P00045"]]["company_id"]
        stack.odoo.set_field("res.company", company, name="`EU` <!channel> *Ops*")

        await stack.send_order("P00045")

        notice = (await wait_until(lambda: [m.text for m in stack.slack.messages.get(OPS, []) if "No rule routes" in m.text],
                                   what="the no-route notice"))[0]
        assert notice.startswith("No rule routes P00045: No routing rule matches source=odoo")
        assert "business_unit=\u02cbEU\u02cb &lt;!channel&gt; \u2217Ops\u2217" in notice, "the ERP's text is shown as typed"
        assert "`handoff routes explain` shows why" in notice, "our command is a real code span"
        assert "<!channel>" not in notice


async def test_a_refusal_names_the_erps_reference_as_typed(tmp_path):
    async with local_stack(tmp_path / "handoff.db") as stack:
        stack.odoo.set_field("purchase.order", stack.orders["P00045"], name="`P45` <!here>")
        await stack.send_order("P00045")
        card = await stack.card("C0PROCURE", "P45")

        await stack.click("fiona", card, "handoff.approve")  # finance, before any escalation: not hers to decide

        refusal = (await wait_until(lambda: stack.whispers_to("fiona"), what="Fiona's refusal"))[0]
        assert refusal == "Only Procurement manager can decide stage 1 of \u02cbP45\u02cb &lt;!here&gt;."
