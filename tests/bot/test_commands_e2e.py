"""Status, pending inbox, bulk approve, delegation, reassignment and reconciliation, end to end over real HTTP."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlencode

import pytest

from handoff.bot.app import WORKER
from handoff.bot.core.events import Event
from handoff.bot.core.models import RequestStatus
from handoff.bot.fakes.stack import SAMPLE_ROUTING, local_stack
from handoff.bot.fakes.waiting import wait_until
from handoff.bot.routing_file import load_routing
from handoff.state import decision_log

PROCUREMENT = "C0PROCURE"


@pytest.fixture
async def stack(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as running:
        yield running


@pytest.fixture
async def live_stack(tmp_path):
    """On the wall clock, so the outbox's per-channel pacing lets several cards into one channel."""
    async with local_stack(tmp_path / "handoff.db") as running:
        yield running


@pytest.fixture
async def bulk_stack(tmp_path):
    """The sample routing, with po-standard marked bulk-approvable."""
    text = SAMPLE_ROUTING.read_text().replace('name = "po-standard"', 'name = "po-standard"\nbulk_approve = true', 1)
    path = tmp_path / "routing.toml"
    path.write_text(text)
    async with local_stack(tmp_path / "handoff.db", routing=load_routing(path)) as running:
        yield running


async def post_now(stack, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> tuple[int, str]:
    # Signed with the wall clock: bolt checks the 5-minute window against real time, while the test moves Handoff's clock.
    return await stack.post_slack(body, content_type, headers=stack.signer.sign(body, timestamp=int(time.time())))


async def command(stack, person: str, text: str) -> dict:
    body = stack.signer.slash_command_body(stack.slack_id(person), person, PROCUREMENT, "procurement", text)
    status, answer = await post_now(stack, body)
    assert status == 200, answer
    # bolt answers a text-only ack as text/plain, and one with blocks as JSON.
    return json.loads(answer) if answer.startswith("{") else {"text": answer}


async def dm(stack, person: str, text: str, event_id: str):
    """`person` writes to Handoff in their DM with it; returns Handoff's reply there."""
    channel = f"D0{person.upper()}"
    stack.slack.add_channel(channel, f"dm-{person}")
    event = {"type": "message", "channel_type": "im", "channel": channel, "user": stack.slack_id(person), "text": text,
             "ts": f"{time.time():.6f}"}
    status, _ = await post_now(stack, stack.signer.event_callback_body(event, event_id), "application/json")
    assert status == 200
    return await wait_until(lambda: next(iter(stack.slack.messages[channel]), None), what=f"Handoff's reply to {person}")


async def click(stack, person: str, channel: str, ts: str, blocks: list[dict], block_id: str, action_id: str) -> None:
    """`person` clicks the `action_id` button of block `block_id` in a message."""
    button = next(e for b in blocks if b.get("block_id") == block_id for e in b["elements"] if e["action_id"] == action_id)
    message = {"type": "message", "text": "", "ts": ts, "blocks": blocks}
    body = stack.signer.block_actions_body(stack.slack_id(person), person, channel, ts, action_id, button["value"], message=message)
    status, _ = await post_now(stack, body)
    assert status == 200


async def click_card(stack, person: str, card, action_id: str = "handoff.approve") -> None:
    await click(stack, person, card.channel, card.ts, card.blocks, "handoff.actions", action_id)


def request_of(stack, reference: str):
    return stack.store.find_requests(reference)[0]


def events_of(stack, reference: str) -> list[str]:
    return [entry.event for entry in stack.store.narrative(request_of(stack, reference).id)]


async def whisper(stack, person: str, needle: str) -> str:
    return await wait_until(lambda: next((w for w in stack.whispers_to(person) if needle in w), None),
                            what=f"a reply to {person} saying {needle!r}")


# ---- status


async def test_status_answers_stage_holders_age_events_and_link_only_to_those_who_may_see(stack, clock):
    await stack.send_order("P00042")
    await stack.card(PROCUREMENT, "P00042")
    await stack.settled()
    clock.advance(hours=2, minutes=5)

    answer = (await command(stack, "dana", "status P00042"))["text"]
    assert "Stage 1 of 2: waiting for Procurement manager (Dana Approver, Erik Lindqvist) for 2 h 5 min" in answer
    assert "Routed by rule po-large" in answer
    assert "/web#id=" in answer

    assert "P00042" in (await command(stack, "marc", "status P00042"))["text"], "the requester sees their own request"
    refused = (await command(stack, "gus", "status P00042"))["text"]
    assert "No request you can see matches “P00042”" in refused and "Acme" not in refused


async def test_a_partial_reference_or_vendor_gives_a_pick_list_and_an_unknown_one_says_how_to_search(live_stack):
    stack = live_stack
    for reference in ("P00042", "P00043", "P00045"):
        await stack.send_order(reference)
        await stack.card(PROCUREMENT, reference)

    picks = (await command(stack, "dana", "status 0004"))["text"]
    assert "Several requests match “0004”" in picks
    assert all(ref in picks for ref in ("P00042", "P00043", "P00045"))
    by_vendor = (await command(stack, "dana", "status acme"))["text"]
    assert "P00042" in by_vendor and "P00045" in by_vendor and "P00043" not in by_vendor
    unknown = (await command(stack, "dana", "status P99999"))["text"]
    assert "No request you can see matches “P99999”" in unknown and "vendor name" in unknown


async def mention(stack, person: str, text: str, event_id: str, ts: str, thread_ts: str | None = None) -> None:
    """`person` @mentions Handoff in #procurement, at the top level or in a thread."""
    event = {"type": "app_mention", "channel": PROCUREMENT, "user": stack.slack_id(person), "text": f"<@UHANDOFF> {text}",
             "ts": ts, **({"thread_ts": thread_ts} if thread_ts else {})}
    status, _ = await post_now(stack, stack.signer.event_callback_body(event, event_id), "application/json")
    assert status == 200


async def test_a_status_mention_in_a_channel_is_answered_to_the_asker_alone(stack):
    await stack.send_order("P00043")
    card = await stack.card(PROCUREMENT, "P00043")
    seen = len(stack.slack.messages[PROCUREMENT])

    await mention(stack, "erik", "status P00043", "Ev0MENTION1", "1718364000.000100")
    await mention(stack, "dana", "status P00043", "Ev0MENTION3", "1718364000.000200", thread_ts=card.ts)
    await mention(stack, "erik", "what's stuck", "Ev0MENTION5", "1718364000.000500")

    await wait_until(lambda: [e for e in stack.slack.ephemerals if "past its SLA" in e["text"]], what="the stuck answer, ephemeral")

    def answers() -> list[dict] | None:
        found = [e for e in stack.slack.ephemerals if "Stage 1 of 1" in e["text"]]
        return found if len(found) == 2 else None

    by_user = {e["user"]: e for e in await wait_until(answers, what="both answers, ephemeral")}
    assert by_user[stack.slack_id("erik")]["channel"] == PROCUREMENT and by_user[stack.slack_id("erik")]["thread_ts"] is None
    assert by_user[stack.slack_id("dana")]["thread_ts"] == card.ts, "asked in the card's thread, answered there"
    assert stack.slack.messages[PROCUREMENT][seen:] == [], "nothing public: not in the channel, not in any thread"


async def test_the_slash_command_answer_keeps_erp_text_inert_and_our_commands_as_code(stack):
    partner = stack.odoo.db.records["purchase.order"][stack.orders["P00043"]]["partner_id"]
    stack.odoo.set_field("res.partner", partner, name="`Acme` <!channel> <https://evil.example|*click*>")
    await stack.send_order("P00043")
    await stack.card(PROCUREMENT, "P00043")

    answer = (await command(stack, "dana", "status P00043"))["text"]
    missed = (await command(stack, "dana", "status nothing-like-it"))["text"]

    assert answer.startswith("P00043 — \u02cbAcme\u02cb &lt;!channel&gt; &lt;https://evil.example|\u2217click\u2217&gt;, ")
    assert "<!channel>" not in answer and "<https" not in answer
    assert "(e.g. `status P00042`)" in missed, "our suggested command stays a code span"


async def test_a_mention_from_someone_slack_says_is_not_in_the_channel_is_answered_in_their_dm(stack):
    await stack.send_order("P00043")
    await stack.card(PROCUREMENT, "P00043")
    stack.slack.set_members(PROCUREMENT, {stack.slack_id("dana")})  # a shared channel Erik reads from elsewhere, say
    seen = len(stack.slack.messages[PROCUREMENT])

    await mention(stack, "erik", "status P00043", "Ev0MENTION4", "1718364000.000400")

    dm = await wait_until(lambda: stack.slack.dms.get(stack.slack_id("erik")), what="Erik's DM opened")
    answer = await wait_until(lambda: next(iter(stack.slack.messages.get(dm, [])), None), what="the answer in Erik's DM")
    assert "Stage 1 of 1" in answer.text
    assert stack.slack.messages[PROCUREMENT][seen:] == [] and stack.slack.ephemerals == []


async def test_pending_asked_in_a_channel_comes_back_only_to_the_asker(stack):
    await stack.send_order("P00043")
    await stack.card(PROCUREMENT, "P00043")
    event = {"type": "app_mention", "channel": PROCUREMENT, "user": stack.slack_id("erik"), "text": "<@UHANDOFF> what's pending for me",
             "ts": "1718364000.000300"}
    status, _ = await post_now(stack, stack.signer.event_callback_body(event, "Ev0MENTION2"), "application/json")
    assert status == 200
    inbox = await wait_until(lambda: next((e for e in stack.slack.ephemerals if e["user"] == stack.slack_id("erik")), None),
                             what="the inbox, ephemeral")
    assert inbox["channel"] == PROCUREMENT and any(b.get("type") == "actions" for b in inbox["blocks"])
    assert stack.slack.thread_replies(PROCUREMENT, "1718364000.000300") == []


async def test_whats_stuck_lists_stages_past_their_sla_oldest_first(stack, clock):
    await stack.send_order("P00043")
    await stack.card(PROCUREMENT, "P00043")
    clock.advance(hours=2)
    await stack.send_order("P00042")
    await stack.card(PROCUREMENT, "P00042")
    assert "Nothing you can see is past its SLA" in (await command(stack, "dana", "stuck"))["text"]

    clock.advance(hours=7)  # P00043 has waited 9 h, P00042 7 h: only P00043 is past its 8 h SLA
    stuck = (await command(stack, "dana", "what's stuck"))["text"]
    assert "1 past their SLA" in stuck and "P00043" in stuck and "P00042" not in stuck
    clock.advance(hours=2)
    stuck = (await command(stack, "dana", "stuck"))["text"]
    assert stuck.index("P00043") < stuck.index("P00042"), "oldest first"
    assert "Nothing you can see" in (await command(stack, "gus", "stuck"))["text"]


# ---- the pending inbox and bulk approve


async def test_pending_inbox_buttons_decide_the_request(stack):
    await stack.send_order("P00043")
    card = await stack.card(PROCUREMENT, "P00043")
    reply = await dm(stack, "dana", "what's pending for me", "Ev0PENDING1")
    assert "1 waiting for your decision" in reply.text
    request = request_of(stack, "P00043")
    item = f"handoff.inbox.{request.id}.actions"
    buttons = next(b for b in reply.blocks if b.get("block_id") == item)["elements"]
    assert [b["action_id"] for b in buttons] == ["handoff.approve", "handoff.reject", "handoff.ask_info", "handoff.reassign"]
    assert not any(b.get("block_id") == "handoff.inbox.bulk" for b in reply.blocks), "po-standard is not bulk-approvable here"

    await click(stack, "dana", reply.channel, reply.ts, reply.blocks, item, "handoff.approve")
    await wait_until(lambda: stack.order_state("P00043") == "purchase", what="the approval in Odoo")
    await stack.settled()
    assert "Approved by Dana Approver" in str(stack.slack.message(PROCUREMENT, card.ts).blocks)
    assert "Nothing waits for your decision" in (await command(stack, "dana", "pending"))["text"]


async def test_slash_pending_answers_with_the_inbox_blocks(stack):
    await stack.send_order("P00042")
    await stack.card(PROCUREMENT, "P00042")
    answer = await command(stack, "erik", "pending")
    assert answer["text"].startswith("1 waiting for your decision")
    assert any(b.get("block_id", "").endswith(".actions") for b in answer["blocks"])
    assert (await command(stack, "fiona", "pending"))["text"] == "Nothing waits for your decision.", "stage 2 is not open yet"


async def test_approve_all_approves_each_checked_item_and_skips_the_one_that_drifted(bulk_stack):
    stack = bulk_stack
    for reference in ("P00043", "P00045"):
        await stack.send_order(reference)
        await stack.card(PROCUREMENT, reference)
    reply = await dm(stack, "dana", "pending", "Ev0PENDING2")
    bulk = next(b for b in reply.blocks if b.get("block_id") == "handoff.inbox.bulk")["elements"][0]
    assert bulk["text"]["text"] == "Approve all 2" and "confirm" in bulk

    stack.odoo.set_field("purchase.order", stack.orders["P00045"], amount_total=2499.0)
    await click(stack, "dana", reply.channel, reply.ts, reply.blocks, "handoff.inbox.bulk", "handoff.bulk_approve")
    summary = await whisper(stack, "dana", "Approved 1 of 2")
    assert "✓ P00043" in summary and "✗ P00045 not approved" in summary and "changed in Odoo" in summary
    await wait_until(lambda: stack.order_state("P00043") == "purchase", what="P00043 approved in Odoo")
    await stack.settled()
    assert stack.order_state("P00045") == "to approve"
    assert Event.DECISION_RECORDED in events_of(stack, "P00043")
    assert Event.DRIFT_DETECTED in events_of(stack, "P00045") and Event.DECISION_RECORDED not in events_of(stack, "P00045")
    assert stack.odoo.calls["purchase.order.button_approve"] == 1


# ---- delegation and reassignment


async def test_delegation_holds_only_inside_its_window_and_is_logged(stack, clock):
    today = clock.now().date()
    start, until = today + timedelta(days=1), today + timedelta(days=2)
    answer = await command(stack, "fiona", f"delegate <@{stack.slack_id('erik')}|erik> from {start} until {until}")
    assert "Erik Lindqvist now decides for you" in answer["text"]
    entries = [e for e in decision_log.entries(stack.store.conn) if e.event == Event.DELEGATION_GRANTED]
    assert entries and entries[-1].body["delegate"] == "erik"

    await stack.send_order("P00042")
    await click_card(stack, "dana", await stack.card(PROCUREMENT, "P00042"))
    fiona_card = await stack.card("fiona", "P00042")
    await click_card(stack, "erik", fiona_card)  # before the window
    await whisper(stack, "erik", "Only Finance director can decide")

    clock.advance(days=1, hours=1)  # inside the window: a new stage 2 reaches the delegate's DM as well
    await stack.send_order("P00044")
    await click_card(stack, "dana", await stack.card(PROCUREMENT, "P00044"))
    erik_card = await stack.card("erik", "P00044")
    await stack.card("fiona", "P00044")
    await click_card(stack, "erik", erik_card)
    await wait_until(lambda: stack.order_state("P00044") == "purchase", what="the delegate's approval in Odoo")

    clock.advance(days=2)  # after the window
    await click_card(stack, "erik", fiona_card)
    await wait_until(lambda: len([w for w in stack.whispers_to("erik") if "Only Finance director" in w]) == 2, what="a second refusal")
    assert stack.order_state("P00042") == "to approve"


async def test_delegating_to_someone_handoff_does_not_know_names_them_as_slack_sent_them(stack):
    answer = await command(stack, "fiona", "delegate <@U0NOBODY|nobody> until 2099-01-01")

    assert answer["text"] == ("Handoff doesn't know nobody, so it can't route approvals to them. "
                              "Ask an admin to add them to the routing config.")


async def test_a_delegate_still_cannot_approve_their_own_request_and_delegate_off_ends_it(stack, clock):
    until = clock.now().date() + timedelta(days=3)
    await command(stack, "fiona", f"delegate <@{stack.slack_id('marc')}|marc> until {until}")
    await stack.send_order("P00042")  # raised by Marc
    await click_card(stack, "dana", await stack.card(PROCUREMENT, "P00042"))
    fiona_card = await stack.card("fiona", "P00042")
    await stack.settled()
    assert stack.slack_id("marc") not in stack.slack.dms, "the requester gets no card as a delegate"
    await click_card(stack, "marc", fiona_card)
    await whisper(stack, "marc", "You can't approve your own request")

    assert "Delegation to Marc Buyer ended" in (await command(stack, "fiona", "delegate off"))["text"]
    assert Event.DELEGATION_REVOKED in [e.event for e in decision_log.entries(stack.store.conn)]
    assert "no delegation" in (await command(stack, "fiona", "delegate off"))["text"]
    assert "YYYY-MM-DD" in (await command(stack, "fiona", f"delegate <@{stack.slack_id('erik')}|erik> until soon"))["text"]


async def test_reassign_from_the_card_moves_the_stage_to_the_picked_person(stack):
    await stack.send_order("P00043")
    card = await stack.card(PROCUREMENT, "P00043")
    await click_card(stack, "dana", card, "handoff.reassign")
    opened = await wait_until(lambda: stack.slack.views, what="the reassign modal")
    view = opened[-1]["view"]
    assert view["blocks"][0]["element"]["type"] == "users_select"

    body = stack.signer.view_submission_body(stack.slack_id("dana"), "dana", view, {"assignee_block": {"assignee": ""}})
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    # A users_select reports `selected_user`, not `value`.
    payload["view"]["state"]["values"]["assignee_block"]["assignee"] = {"type": "users_select", "selected_user": stack.slack_id("erik")}
    status, _ = await post_now(stack, urlencode({"payload": json.dumps(payload)}).encode())
    assert status == 200
    await whisper(stack, "dana", "now rests with Erik Lindqvist")
    erik_card = await stack.card("erik", "P00043")
    assert Event.STAGE_REASSIGNED in events_of(stack, "P00043")
    await wait_until(lambda: "Dana Approver reassigned stage 1 to Erik Lindqvist" in str(stack.slack.message(PROCUREMENT, card.ts).blocks),
                     what="the channel card telling the reassignment")

    await click_card(stack, "dana", card)
    await whisper(stack, "dana", "Only Procurement manager can decide")
    await click_card(stack, "erik", erik_card)
    await wait_until(lambda: stack.order_state("P00043") == "purchase", what="the assignee's approval in Odoo")


# ---- reconciliation


async def test_an_order_never_webhooked_is_found_by_the_poll(live_stack):
    stack = live_stack
    fresh = await stack.app[WORKER].reconciler.tick()
    assert fresh == 7, "every seeded order waiting for approval or decided in Odoo"
    for reference in ("P00042", "P00043", "P00045"):
        card = await stack.card(PROCUREMENT, reference)
        assert f"Odoo poll for {reference}" in str(card.blocks), "the narrative says where the request came from"
    await stack.settled()
    assert {r.reference for r in stack.store.requests_by_status(RequestStatus.OPEN)} == {"P00042", "P00043", "P00044", "P00045"}
    assert await stack.app[WORKER].reconciler.tick() == 0, "a second poll finds nothing new"
    status, body = await stack.send_order("P00043")
    assert body["status"] == "duplicate", "the webhook of a change already polled dedups"


async def test_the_worker_polls_on_its_interval(stack, clock):
    await stack.settled()
    assert stack.store.requests_by_status(RequestStatus.OPEN) == [], "no poll before the first interval"
    clock.advance(seconds=stack.app[WORKER].reconciler.every.total_seconds())
    stack.app[WORKER].wake()
    await stack.card(PROCUREMENT, "P00042")


async def test_an_approval_made_in_odoo_closes_the_card_without_writing_back(stack):
    await stack.send_order("P00042")
    card = await stack.card(PROCUREMENT, "P00042")
    await stack.settled()
    stack.odoo.add_user("olga@example.com", name="Olga Owner")
    stack.odoo.set_field("purchase.order", stack.orders["P00042"], by="olga@example.com", state="purchase",
                         date_approve="2026-11-23 12:00:00")

    assert await stack.app[WORKER].reconciler.tick() >= 1
    closed = await wait_until(lambda: "Decided directly in the ERP" in str(stack.slack.message(PROCUREMENT, card.ts).blocks),
                              what="the card closed")
    assert closed
    await stack.settled()
    final = stack.slack.message(PROCUREMENT, card.ts)
    assert not any(b["type"] == "actions" for b in final.blocks)
    assert "Approved directly in the ERP by Olga Owner at 23 Nov 12:00 UTC" in str(final.blocks)
    assert Event.REQUEST_CLOSED_IN_ERP in events_of(stack, "P00042")
    assert stack.odoo.calls["purchase.order.button_approve"] == 0 and stack.odoo.calls["purchase.order.button_cancel"] == 0


async def test_an_unreadable_approve_all_button_approves_nothing_and_says_so(stack):
    await stack.send_order("P00043")
    await stack.card(PROCUREMENT, "P00043")
    blocks = [{"type": "actions", "block_id": "handoff.inbox.bulk", "elements": [
        {"type": "button", "action_id": "handoff.bulk_approve", "text": {"type": "plain_text", "text": "Approve all 2"},
         "value": '[["r-1", "one", 0]]'}]}]
    await click(stack, "dana", PROCUREMENT, "1718364000.000200", blocks, "handoff.inbox.bulk", "handoff.bulk_approve")
    await whisper(stack, "dana", "nothing was approved")
    assert stack.odoo.calls["purchase.order.button_approve"] == 0
