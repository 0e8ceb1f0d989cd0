"""Teams parity for issue 5, over real HTTP: the inbox card, Approve all, delegation by mention, reassign from a card,
and a request decided in the ERP saying who and when."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from handoff.bot.core.events import Event
from handoff.bot.fakes.stack import local_stack, routing_for
from handoff.bot.fakes.waiting import wait_until
from handoff.bot.routing_file import load_routing
from handoff.state import decision_log

APPROVE, REJECT, REASSIGN, BULK = "handoff.approve", "handoff.reject", "handoff.reassign", "handoff.bulk_approve"
CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"


@pytest.fixture
async def stack(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", chat="teams", clock=clock) as running:
        yield running


@pytest.fixture
async def bulk_stack(tmp_path):
    """Odoo and Teams, with the sample routing's po-standard marked bulk-approvable."""
    routing_for("teams", tmp_path)  # writes routing-teams.toml: the sample routing, on Teams
    text = (tmp_path / "routing-teams.toml").read_text().replace('name = "po-standard"', 'name = "po-standard"\nbulk_approve = true', 1)
    path = tmp_path / "routing.toml"
    path.write_text(text)
    async with local_stack(tmp_path / "handoff.db", routing=load_routing(path), chat="teams") as running:
        yield running


def request_of(stack, reference: str):
    return stack.store.find_requests(reference)[0]


def events_of(stack, reference: str) -> list[str]:
    return [entry.event for entry in stack.store.narrative(request_of(stack, reference).id)]


def text_of(content: dict) -> str:
    return json.dumps(content, ensure_ascii=False)


async def answer(stack, person: str, needle: str) -> str:
    found = await wait_until(lambda: [t for t in stack.teams.texts(person) if needle in t], what=f"an answer to {person} saying {needle!r}")
    return found[-1]


async def inbox_of_two_orders(stack):
    """Dana's inbox card after P00043 and P00045 reach procurement: both listed, with its Approve all 2."""
    for reference in ("P00043", "P00045"):
        await stack.send_order(reference)
        await stack.teams.card("procurement", reference)
    await stack.teams.say("dana", "pending")
    return await stack.teams.reply_card("dana", "Approve all 2")


async def test_the_inbox_card_lists_what_waits_and_its_approve_reaches_odoo(stack):
    await stack.send_order("P00043")
    channel_card = await stack.teams.card("procurement", "P00043")
    request = request_of(stack, "P00043")

    await stack.teams.say("dana", "what's pending for me")
    inbox = await stack.teams.reply_card("dana", "waiting for your decision")
    assert "1 waiting for your decision" in text_of(inbox.content) and "P00043" in text_of(inbox.content)
    assert "Approve all" not in text_of(inbox.content), "po-standard is not bulk-approvable here"

    status, body = await stack.teams.invoke("dana", inbox, APPROVE, request_id=request.id)

    # The click answers with the inbox again, its result on top and the decided item gone.
    assert (status, body["type"]) == (200, CARD)
    refreshed = text_of(body["value"])
    assert "Nothing waits for your decision" in refreshed and "Handoff is writing it back to Odoo" in refreshed
    await wait_until(lambda: stack.erp_status("P00043") == "purchase", what="the approval in Odoo")
    await stack.settled()
    assert "Approved by Dana Approver" in text_of(stack.teams.current(channel_card).content)


async def test_an_inbox_reject_needs_its_reason_and_a_stranger_gets_no_inbox(stack):
    await stack.send_order("P00043")
    await stack.teams.card("procurement", "P00043")
    request = request_of(stack, "P00043")
    await stack.teams.say("erik", "my approvals")
    inbox = await stack.teams.reply_card("erik", "waiting for your decision")

    status, body = await stack.teams.invoke("erik", inbox, REJECT, {f"reason.{request.id}": " "}, request_id=request.id)
    assert (status, body["type"]) == (200, CARD) and "Please say why you reject it" in text_of(body["value"])
    status, body = await stack.teams.invoke("erik", inbox, REJECT, {f"reason.{request.id}": "Wrong vendor."}, request_id=request.id)
    assert (status, body["type"]) == (200, CARD)
    await wait_until(lambda: stack.erp_status("P00043") == "cancel", what="the rejection in Odoo")

    await stack.teams.say("gus", "pending")
    assert await answer(stack, "gus", "Nothing waits for your decision")


async def test_approve_all_in_teams_approves_each_checked_item_and_skips_the_one_that_drifted(bulk_stack):
    stack = bulk_stack
    inbox = await inbox_of_two_orders(stack)

    stack.odoo.set_field("purchase.order", stack.orders["P00045"], amount_total=2499.0)
    status, body = await stack.teams.invoke("dana", inbox, BULK)

    assert (status, body["type"]) == (200, CARD)
    said = text_of(body["value"])
    assert "Approved 1 of 2." in said and "✓ P00043" in said and "✗ P00045 not approved" in said and "changed in Odoo" in said
    assert "P00045 —" in said, "the drifted item stays in the inbox, at its new version"
    await wait_until(lambda: stack.erp_status("P00043") == "purchase", what="P00043 approved in Odoo")
    await stack.settled()
    assert stack.erp_status("P00045") == "to approve"
    assert Event.DECISION_RECORDED in events_of(stack, "P00043")
    assert Event.DRIFT_DETECTED in events_of(stack, "P00045") and Event.DECISION_RECORDED not in events_of(stack, "P00045")
    assert stack.odoo.calls["purchase.order.button_approve"] == 1


async def test_an_unreadable_approve_all_approves_nothing_and_says_so(bulk_stack):
    stack = bulk_stack
    inbox = await inbox_of_two_orders(stack)

    status, body = await stack.teams.invoke("dana", inbox, BULK, {"items": [["r-1", "one", 0]]})

    assert status == 200 and "nothing was approved" in text_of(body["value"])
    assert stack.odoo.calls["purchase.order.button_approve"] == 0


async def test_a_delegation_by_mention_holds_only_inside_its_window_and_delegate_off_ends_it(stack, clock):
    today = clock.now().date()
    await stack.teams.say("fiona", f"delegate {{mention}} from {today + timedelta(days=1)} until {today + timedelta(days=3)}",
                          channel="finance", mention="erik")
    later = await wait_until(lambda: [t for t in stack.teams.texts("finance") if "now decides for you" in t], what="the grant")
    assert "Erik Lindqvist now decides for you from" in later[-1]

    await stack.send_order("P00042")
    await stack.teams.invoke("dana", await stack.teams.card("procurement", "P00042"), APPROVE)
    fiona_card = await stack.teams.card("fiona", "P00042")
    status, body = await stack.teams.invoke("erik", fiona_card, APPROVE)
    assert body["type"] == MESSAGE and "Only Finance director can decide" in body["value"], "the window has not begun"

    await stack.teams.say("fiona", f"delegate erik until {today}")  # by key, in the 1:1 chat, starting now
    assert "Erik Lindqvist now decides for you until the end of" in await answer(stack, "fiona", "now decides")
    grants = [e for e in decision_log.entries(stack.store.conn) if e.event == Event.DELEGATION_GRANTED]
    assert [g.body["delegate"] for g in grants] == ["erik", "erik"]
    status, body = await stack.teams.invoke("erik", fiona_card, APPROVE)
    assert (status, body["type"]) == (200, CARD)
    await wait_until(lambda: stack.erp_status("P00042") == "purchase", what="the delegate's approval in Odoo")

    await stack.teams.say("fiona", "delegate off")
    assert "Delegation to Erik Lindqvist ended" in await answer(stack, "fiona", "ended")
    await stack.teams.say("fiona", "delegate nobody-known until 2026-12-01")
    assert "Handoff doesn't know nobody-known" in await answer(stack, "fiona", "nobody-known")


async def test_reassign_from_a_teams_card_moves_the_stage_to_the_picked_person(stack):
    await stack.send_order("P00043")  # raised by Marc
    card = await stack.teams.card("procurement", "P00043")
    choices = next(i for i in _inputs(card.content) if i["type"] == "Input.ChoiceSet")["choices"]
    # Procurement managers, and the finance director the stage escalates to; never Marc, who raised it.
    assert {c["value"] for c in choices} == {"dana", "erik", "fiona"}

    status, body = await stack.teams.invoke("dana", card, REASSIGN, {"assignee": "marc"})
    assert "can't take P00043" in text_of(body)
    status, body = await stack.teams.invoke("dana", card, REASSIGN, {"assignee": "erik"})

    assert (status, body["type"]) == (200, CARD)
    assert "Dana Approver reassigned stage 1 to Erik Lindqvist" in text_of(body["value"])
    erik_card = await stack.teams.card("erik", "P00043")
    assert Event.STAGE_REASSIGNED in events_of(stack, "P00043")
    status, body = await stack.teams.invoke("dana", stack.teams.current(card), APPROVE)
    assert "Only Procurement manager can decide" in body["value"]
    status, body = await stack.teams.invoke("erik", erik_card, APPROVE)
    assert (status, body["type"]) == (200, CARD)
    await wait_until(lambda: stack.erp_status("P00043") == "purchase", what="the assignee's approval in Odoo")


async def test_an_older_client_reassigns_through_the_action_submit_fallback(stack):
    await stack.send_order("P00043")
    card = await stack.teams.card("procurement", "P00043")

    status, _ = await stack.teams.submit("dana", card, REASSIGN, {"assignee": "erik"})

    assert status == 201
    await stack.teams.card("erik", "P00043")
    said = await wait_until(lambda: [t for t in stack.teams.texts("procurement") if "now rests with" in t], what="the reply")
    assert "Stage 1 of P00043 (Procurement manager) now rests with Erik Lindqvist" in said[-1]


async def test_a_dataverse_order_approved_in_dataverse_closes_its_teams_card_saying_when(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", chat="teams", clock=clock) as stack:
        await stack.send_order("PO-000124")
        card = await stack.teams.card("procurement", "PO-000124")
        stack.dataverse.change("PO-000124", statuscode=100000002)  # someone approves it in Dataverse itself
        stamp = clock.now().strftime("%d %b %H:%M UTC")

        _, body = await stack.teams.invoke("erik", card, APPROVE)

        assert body["type"] == MESSAGE and "already decided in Dataverse" in body["value"]
        closed = await wait_until(lambda: f"Approved directly in the ERP at {stamp}" in text_of(stack.teams.current(card).content),
                                  what="the card closed, saying when")
        assert closed
        [entry] = [e for e in stack.store.narrative(request_of(stack, "PO-000124").id) if e.event == Event.REQUEST_CLOSED_IN_ERP]
        assert entry.body["decided_at"].startswith(clock.now().strftime("%Y-%m-%dT%H:%M"))
        assert stack.dataverse.patches("PO-000124") == [], "nothing written back"


def _inputs(node: object):
    if isinstance(node, dict):
        if str(node.get("type", "")).startswith("Input."):
            yield node
        for value in node.values():
            yield from _inputs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _inputs(value)
