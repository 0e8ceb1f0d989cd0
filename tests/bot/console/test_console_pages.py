"""The console's pages over a running stack: what an operator sees after real webhooks, cards and clicks."""

from __future__ import annotations

import re

import pytest
from console_helpers import pump, text_of

from handoff.bot.core.effects import Effects
from handoff.bot.core.events import Event
from handoff.bot.core.route import ops_target
from handoff.bot.fakes.waiting import wait_until
from handoff.state import outbox

PROCUREMENT = "C0PROCURE"


@pytest.fixture
async def worked(stack, browser, clock):
    """P00042 (two stages) and P00043 wait; Dana approved P00045, which Odoo took."""
    for reference in ("P00042", "P00043", "P00045"):
        await stack.send_order(reference)
    await wait_until(pump(stack, clock), what="the cards to go out")
    await stack.click("dana", await stack.card(PROCUREMENT, "P00045"), "handoff.approve")
    await wait_until(pump(stack, clock), what="the approval to reach Odoo")
    await browser.sign_in()
    return stack


def request_id(stack, reference: str) -> str:
    return stack.store.find_requests(reference)[0].id


async def test_aging_board_shows_open_requests_by_unit_and_age_with_stalled_first(worked, browser, clock):
    clock.advance(hours=5)  # inside the 8h SLA: only a recorded stall counts
    worked.store.log(request_id(worked, "P00043"), Event.REQUEST_STALLED, "handoff", {"stage": 0, "role": "procurement_manager", "sla_hours": 8})
    status, page = await browser.get("/console/")
    seen = text_of(page)
    assert status == 200
    assert "2 open requests, 1 stalled." in seen
    assert re.search(r'<table id="stalled">.*P00043.*a stall is recorded in its narrative.*</table>', page, re.S)
    assert "P00042" not in page.split('<table id="aging">')[0], "P00042 is not stalled"
    grid = page.split('<table id="aging">')[1]
    assert grid.index("P00043") < grid.index("P00042"), "stalled first"
    assert "Handoff Demo EU" in grid and "P00045" not in grid, "decided requests leave the board"
    row = re.search(r"<tr><td>Handoff Demo EU</td><td>\(none\)</td>(.*?)</tr>", grid).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert "P00042" in cells[1] and not cells[0] and not cells[2], "both sit in the 4–24h bucket"
    assert f'href="/console/requests/{request_id(worked, "P00042")}"' in grid


async def test_a_stage_past_its_sla_is_stalled_without_any_recorded_stall(worked, browser, clock):
    clock.advance(hours=9)
    _, page = await browser.get("/console/")
    assert "2 open requests, 2 stalled." in text_of(page)
    assert "over its 8h SLA" in text_of(page)


async def test_request_page_tells_the_whole_story_and_verifies_every_log_entry(worked, browser):
    status, page = await browser.get(f"/console/requests/{request_id(worked, 'P00045')}")
    seen = text_of(page)
    assert status == 200
    for fact in ("Odoo webhook for P00045", "Packet version 1 built", "Card for stage 1 posted on slack (channel)",
                 "Dana Approver approved (stage 1)", "Written to the ERP: approved (state now purchase)", "Request approved"):
        assert fact in seen
    entries = worked.store.narrative(request_id(worked, "P00045"))
    assert seen.count("✓ verified") == len(entries) and "Every entry verified" in seen
    assert entries[-1].hash in page
    card = page.split('<div class="card" data-platform="slack">')[1].split("</div></details>")[0]
    assert "P00045 · Approved" in card and "<button" not in card, "a decided card has no buttons"


async def test_an_open_requests_card_shows_its_buttons_disabled(worked, browser):
    _, page = await browser.get(f"/console/requests/{request_id(worked, 'P00042')}")
    buttons = re.findall(r"<button disabled[^>]*>([^<]+)</button>", page)
    assert buttons[:2] == ["Approve", "Reject"]
    assert "Stage 1 of 2 · Procurement manager" in text_of(page)


async def test_an_edited_log_entry_is_flagged_on_its_request_page(worked, browser):
    rid = request_id(worked, "P00045")
    seq = worked.store.narrative(rid)[0].seq
    table = " ON decision_log" if getattr(worked.store.conn, "dialect", "sqlite") == "postgresql" else ""
    worked.store.conn.execute("DROP TRIGGER decision_log_no_update" + table)  # what someone with file access could do
    worked.store.conn.execute("UPDATE decision_log SET body = replace(body, 'P00045', 'P00099') WHERE seq = ?", (seq,))
    _, page = await browser.get(f"/console/requests/{rid}")
    seen = text_of(page)
    assert "1 entry failed verification." in seen
    assert "✗ edited after it was written: the hash does not match the content" in seen


async def test_an_unknown_request_is_a_404_that_points_back_to_the_board(worked, browser):
    status, page = await browser.get("/console/requests/r-nope")
    assert status == 404 and "No request has the id r-nope." in text_of(page)


async def test_process_intelligence_draws_each_chart_with_its_numbers(worked, browser):
    status, page = await browser.get("/console/insights")
    assert status == 200
    for chart in ("Approval duration by role and stage", "Median cycle time per week", "Mean wait by stage", "Rates by exception type"):
        assert f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{chart}"' in page
    seen = text_of(page)
    assert "Stage Median p90 Decided Stage 1 · Procurement manager" in seen
    assert "(none) 0% 0% 3" in seen, "three requests, none rejected or asked about"


async def test_a_dead_letter_retried_from_the_console_is_delivered(worked, browser, clock):
    store = worked.store
    with store.transaction() as conn:
        Effects(conn, clock.now()).notify(ops_target(worked.routing, "slack"), "Retried from the console", key="console-test")
        item = outbox.items(conn, "pending")[-1]
        outbox.bury(conn, item.id, "channel_not_found")
    status, page = await browser.get("/console/outbox")
    assert re.search(rf"<td>{item.id}</td><td>notify</td>.*channel_not_found.*Retry", page, re.S)
    status, page = await browser.post(f"/console/outbox/{item.id}/retry", {"csrf": browser.csrf})
    assert status == 200 and f"Item {item.id} is queued again" in text_of(page)
    await wait_until(lambda: any(m.text == "Retried from the console" for m in worked.slack.messages["C0OPS"]),
                     what="the retried alert in the ops channel")
    _, page = await browser.get("/console/outbox")
    assert "No dead letters." in text_of(page)


async def test_retrying_an_item_that_is_not_dead_says_so(worked, browser):
    done = outbox.items(worked.store.conn, "done")[0]
    await browser.get("/console/outbox")
    status, page = await browser.post(f"/console/outbox/{done.id}/retry", {"csrf": browser.csrf})
    assert status == 409 and f"Outbox item {done.id} is done, not a dead letter" in text_of(page)


async def test_routing_lists_the_rules_and_explains_a_pasted_event(worked, browser):
    _, page = await browser.get("/console/routing")
    assert "po-large global amount ≥ 10,000" in text_of(page)
    facts = '{"source": "odoo", "model": "purchase.order", "amount": 12500}'
    status, page = await browser.post("/console/routing", {"csrf": browser.csrf, "event": facts})
    assert status == 200
    assert "Winner: rule 'po-large' (global)" in text_of(page)


@pytest.mark.parametrize(("pasted", "said"), [
    ("{not json", "The pasted text is not JSON"),
    ("[1, 2]", "The pasted JSON holds JSON but not an object."),
])
async def test_explaining_bad_input_is_a_400_that_says_what_to_paste(worked, browser, pasted, said):
    await browser.get("/console/routing")
    status, page = await browser.post("/console/routing", {"csrf": browser.csrf, "event": pasted})
    assert status == 400 and said in text_of(page)
