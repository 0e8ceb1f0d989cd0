"""The spine end to end, over real HTTP: Odoo webhook → Slack card → clicks → decision log → Odoo write-back."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace


from handoff.bot.app import WORKER
from handoff.bot.core.events import Event
from handoff.bot.fakes.stack import button_binding
from handoff.bot.fakes.waiting import wait_until
from handoff.state import decision_log, outbox

PROCUREMENT = "C0PROCURE"
OPS = "C0OPS"


def events_of(stack, reference: str) -> list[str]:
    request = stack.store.find_requests(reference)[0]
    return [entry.event for entry in stack.store.narrative(request.id)]


def top_level(stack, channel: str, reference: str):
    return [m for m in stack.slack.messages.get(channel, []) if m.thread_ts is None and reference in m.text]


async def test_two_stage_approval_reaches_odoo_and_tells_the_team(stack):
    status, body = await stack.send_order("P00042")
    assert (status, body["status"]) == (200, "accepted")
    card = await stack.card(PROCUREMENT, "P00042")
    shown = str(card.blocks)
    for fact in ("Acme Supplies", "12,500.00 EUR", "Marc Demo", "Steel bolts M8", "Stage 1 of 2"):
        assert fact in shown

    await stack.click("dana", card, "handoff.approve")
    fiona_card = await stack.card("fiona", "P00042")
    updated = stack.slack.message(PROCUREMENT, card.ts)
    assert updated.updates, "the channel card is updated in place"
    assert "Finance director" in str(updated.blocks)

    await stack.click("fiona", fiona_card, "handoff.approve")
    await wait_until(lambda: stack.order_state("P00042") == "purchase", what="the approval in Odoo")
    thread = await wait_until(lambda: stack.slack.thread_replies(PROCUREMENT, card.ts), what="the what-changed reply")
    assert "What changed for P00042" in thread[0].text
    assert "Dana Approver approved (stage 1)" in thread[0].text
    assert "Written to the ERP: approved (state now purchase)" in thread[0].text
    await stack.settled()
    final = stack.slack.message(PROCUREMENT, card.ts)
    assert not any(b["type"] == "actions" for b in final.blocks), "a decided card has no buttons"
    assert "Approved by Dana Approver (stage 1), Fiona Finance (stage 2). Odoo updated." in str(final.blocks)
    assert events_of(stack, "P00042")[-2:] == [Event.ERP_UPDATED, Event.REQUEST_COMPLETED]
    assert stack.odoo.calls["purchase.order.button_approve"] == 1
    assert decision_log.verify(stack.store.conn).ok


async def test_a_redelivered_webhook_never_makes_a_second_card(stack):
    await stack.send_order("P00043")
    await stack.card(PROCUREMENT, "P00043")
    status, body = await stack.send_order("P00043")
    assert (status, body["status"]) == (200, "duplicate")
    # An unrelated edit re-sends the webhook with a new write_date: same request, still one card.
    stack.odoo.set_field("purchase.order", stack.orders["P00043"], date_order="2024-07-01 00:00:00")
    status, body = await stack.send_order("P00043")
    assert body["status"] == "accepted"
    await stack.settled()
    assert len(top_level(stack, PROCUREMENT, "P00043")) == 1
    assert len(stack.store.find_requests("P00043")) == 1


async def test_separation_of_duties_keeps_a_requester_from_approving(stack):
    order = stack.odoo.add_purchase_order(name="P00050", vendor="Initech", requester_login="dana@example.com",
                                          lines=[("Printer toner", 10, 80.0)], attachments=1)
    await stack.post_webhook(stack.odoo.webhook_body(order))
    card = await stack.card(PROCUREMENT, "P00050")
    await stack.click("dana", card, "handoff.approve")
    whisper = await wait_until(lambda: stack.whispers_to("dana"), what="Dana's private reply")
    assert whisper == ["You can't approve your own request. P00050 stays with Procurement manager."]
    await stack.settled()
    assert stack.odoo.calls["purchase.order.button_approve"] == 0
    assert Event.DECISION_REFUSED in events_of(stack, "P00050")
    await stack.click("erik", card, "handoff.approve")
    await wait_until(lambda: stack.odoo.db.records["purchase.order"][order]["state"] == "purchase", what="Erik's approval")


async def test_a_record_that_changed_is_not_approved_on_the_old_picture(stack):
    await stack.send_order("P00043")
    card = await stack.card(PROCUREMENT, "P00043")
    first_version = replace(card, blocks=copy.deepcopy(card.blocks))  # the fake updates messages in place
    stack.odoo.set_field("purchase.order", stack.orders["P00043"], amount_total=4100.0)
    await stack.click("erik", card, "handoff.approve")
    whisper = await wait_until(lambda: stack.whispers_to("erik"), what="Erik's private reply")
    assert "changed in Odoo since this card was built (amount 3,240.00 EUR → 4,100.00 EUR)" in whisper[0]
    refreshed = await wait_until(
        lambda: button_binding(stack.slack.message(PROCUREMENT, card.ts), "handoff.approve")["v"] == 2
        and stack.slack.message(PROCUREMENT, card.ts), what="the refreshed card")
    assert "Refreshed from Odoo: amount 3,240.00 EUR → 4,100.00 EUR" in str(refreshed.blocks)
    assert stack.order_state("P00043") == "to approve"

    # The old card's buttons (version 1) no longer count.
    await stack.click("dana", first_version, "handoff.approve")
    stale = await wait_until(lambda: stack.whispers_to("dana"), what="Dana's private reply")
    assert "out of date" in stale[0]
    await stack.click("erik", refreshed, "handoff.approve")
    await wait_until(lambda: stack.order_state("P00043") == "purchase", what="the approval in Odoo")


async def test_two_approvers_clicking_at_once_make_one_decision(stack):
    await stack.send_order("P00045")
    card = await stack.card(PROCUREMENT, "P00045")
    await asyncio.gather(stack.click("dana", card, "handoff.approve"), stack.click("erik", card, "handoff.approve"))
    await wait_until(lambda: stack.order_state("P00045") == "purchase", what="the approval in Odoo")
    await stack.settled()
    request = stack.store.find_requests("P00045")[0]
    decisions = [e for e in stack.store.narrative(request.id) if e.event == Event.DECISION_RECORDED]
    assert len(decisions) == 1
    winner = decisions[0].actor
    loser = {"dana", "erik"}.difference({winner}).pop()
    told = await wait_until(lambda: stack.whispers_to(loser), what="the loser's private reply")
    assert stack.routing.people[winner].name in told[0]
    assert stack.odoo.calls["purchase.order.button_approve"] == 1


async def test_only_members_of_the_stage_role_can_decide(stack):
    await stack.send_order("P00045")
    card = await stack.card(PROCUREMENT, "P00045")
    await stack.click("fiona", card, "handoff.approve")
    told = await wait_until(lambda: stack.whispers_to("fiona"), what="Fiona's private reply")
    assert told == ["Only Procurement manager can decide stage 1 of P00045."]
    assert stack.order_state("P00045") == "to approve"


async def test_reject_asks_for_a_reason_and_writes_it_to_odoo(stack):
    await stack.send_order("P00045")
    card = await stack.card(PROCUREMENT, "P00045")
    await stack.click("dana", card, "handoff.reject")
    await wait_until(lambda: stack.slack.views, what="the reject modal")
    status, body = await stack.submit_modal("dana", "   ")
    assert status == 200 and "response_action" in body and "errors" in body, "an empty reason is refused in the modal"
    await stack.submit_modal("dana", "Duplicate of P00038")
    await wait_until(lambda: stack.order_state("P00045") == "cancel", what="the cancel in Odoo")

    def reason_in_chatter() -> bool:
        messages = stack.odoo.db.records.get("mail.message", {}).values()
        return any("Duplicate of P00038" in m["body"] for m in messages if m.get("res_id") == stack.orders["P00045"])

    # The connector posts the reason to the chatter right after the cancel.
    await wait_until(reason_in_chatter, what="the reason in Odoo's chatter")


async def test_ask_for_info_goes_to_the_requester_in_the_thread_and_the_answer_is_logged(stack):
    await stack.send_order("P00042")
    card = await stack.card(PROCUREMENT, "P00042")
    await stack.click("dana", card, "handoff.ask_info")
    await wait_until(lambda: stack.slack.views, what="the ask-info modal")
    await stack.submit_modal("dana", "Why is installation a separate line?")
    question = await wait_until(lambda: stack.slack.thread_replies(PROCUREMENT, card.ts), what="the question in the thread")
    assert question[0].text.startswith("<@U0MARC> Dana Approver asks: Why is installation a separate line?")
    reply = {"type": "message", "channel": PROCUREMENT, "user": "U0MARC", "text": "The vendor bills it separately.",
             "ts": "1718364500.000100", "thread_ts": card.ts, "channel_type": "channel", "event_ts": "1718364500.000100"}
    body = stack.signer.event_callback_body(reply, "Ev0ANSWER1")
    status, _ = await stack.post_slack(body, content_type="application/json")
    assert status == 200
    await wait_until(lambda: Event.INFO_PROVIDED in events_of(stack, "P00042"), what="the answer in the log")
    await stack.settled()
    assert "Marc Buyer answered: “The vendor bills it separately.”" in str(stack.slack.message(PROCUREMENT, card.ts).blocks)


async def test_odoo_down_at_enrichment_still_reaches_people_marked_incomplete(stack):
    stack.odoo.down = True
    await stack.send_order("P00045")
    card = await stack.card(PROCUREMENT, "P00045", timeout=15)
    assert "could not be read" in str(card.blocks)
    stack.odoo.down = False
    # The first decision re-reads the live record: the picture differs from the hint, so it refreshes first.
    await stack.click("dana", card, "handoff.approve")
    refreshed = await wait_until(
        lambda: button_binding(stack.slack.message(PROCUREMENT, card.ts), "handoff.approve")["v"] == 2
        and stack.slack.message(PROCUREMENT, card.ts), what="the complete card")
    assert "Cordless drill 18V" in str(refreshed.blocks)
    await stack.click("dana", refreshed, "handoff.approve")
    await wait_until(lambda: stack.order_state("P00045") == "purchase", what="the approval in Odoo")


async def test_odoo_down_during_write_back_is_retried_until_it_lands(stack):
    await stack.send_order("P00045")
    card = await stack.card(PROCUREMENT, "P00045")
    stack.odoo.fail_method("button_approve", count=1, status=503)
    await stack.click("dana", card, "handoff.approve")
    failed = await wait_until(
        lambda: [i for i in outbox.items(stack.store.conn, "pending") if i.kind == "erp_write" and i.last_error],
        timeout=10, what="a failed write-back attempt, kept for retry")
    assert "503" in failed[0].last_error
    # Due times are stored, not slept on: make the retry due now instead of waiting out the backoff.
    stack.store.conn.execute("UPDATE outbox SET next_at = '' WHERE id = ?", (failed[0].id,))
    stack.app[WORKER].wake()
    await wait_until(lambda: stack.order_state("P00045") == "purchase", timeout=10, what="the approval in Odoo")
    assert stack.odoo.calls["purchase.order.button_approve"] == 1


async def test_a_write_back_odoo_silently_ignores_reaches_operations_with_the_fix(stack):
    stack.odoo.set_purchase_manager(False)
    await stack.send_order("P00042")
    card = await stack.card(PROCUREMENT, "P00042")
    await stack.click("dana", card, "handoff.approve")
    fiona = await stack.card("fiona", "P00042")
    await stack.click("fiona", fiona, "handoff.approve")
    alert = await wait_until(lambda: [m for m in stack.slack.messages[OPS] if "P00042" in m.text], what="the ops alert")
    assert "Purchase" in alert[0].text and "handoff outbox retry" in alert[0].text
    assert stack.order_state("P00042") == "to approve"
    assert Event.ERP_WRITE_FAILED in events_of(stack, "P00042")
    await stack.settled()
    assert "did not take the decision" in str(stack.slack.message(PROCUREMENT, card.ts).blocks)
