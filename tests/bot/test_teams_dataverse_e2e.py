"""Any source to any platform, over real HTTP: Dataverse and Odoo webhooks → Teams or Slack cards → decisions → write-back."""

from __future__ import annotations

import json

from handoff.bot.core.events import Event
from handoff.bot.fakes.stack import local_stack
from handoff.bot.fakes.waiting import wait_until

APPROVE, REJECT = "handoff.approve", "handoff.reject"
CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"


def events_of(stack, reference: str) -> list[str]:
    request = stack.store.find_requests(reference)[0]
    return [entry.event for entry in stack.store.narrative(request.id)]


def card_text(content: dict) -> str:
    return json.dumps(content)


async def test_dataverse_request_is_approved_in_two_teams_stages_and_written_back_under_if_match(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", chat="teams") as stack:
        status, answer = await stack.send_order("PO-000123")
        assert (status, answer["status"]) == (200, "accepted")
        card = await stack.teams.card("procurement", "PO-000123")
        assert "Acme Supplies" in card_text(card.content)

        status, body = await stack.teams.invoke("dana", card, APPROVE)

        # The invoke answers with the updated card, which no longer offers Approve to the channel.
        assert status == 200 and body["statusCode"] == 200 and body["type"] == CARD
        assert "Dana Approver" in card_text(body["value"])
        fiona = await stack.teams.card("fiona", "PO-000123")
        status, body = await stack.teams.invoke("fiona", fiona, APPROVE)
        assert (status, body["type"]) == (200, CARD)
        await wait_until(lambda: stack.erp_status("PO-000123") == "approved", what="the approval in Dataverse")
        [patch] = stack.dataverse.patches("PO-000123")
        assert patch["If-Match"].startswith('W/"')
        replies = await wait_until(lambda: stack.teams.replies(card), what="the what-changed reply under the channel card")
        assert "What changed for PO-000123" in replies[-1]["text"]
        assert "Written to the ERP: approved" in replies[-1]["text"]


async def test_a_requester_cannot_approve_their_own_dataverse_order_in_teams(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", chat="teams") as stack:
        await stack.send_order("PO-000123")  # raised by Marc
        card = await stack.teams.card("procurement", "PO-000123")

        status, body = await stack.teams.invoke("marc", card, APPROVE)

        assert (status, body["type"]) == (200, MESSAGE)
        assert "own" in body["value"].lower()
        assert Event.DECISION_RECORDED not in events_of(stack, "PO-000123")


async def test_a_teams_reject_needs_a_reason_and_the_reason_lands_on_the_dataverse_record(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", chat="teams") as stack:
        await stack.send_order("PO-000125")
        card = await stack.teams.card("procurement", "PO-000125")

        status, body = await stack.teams.invoke("dana", card, REJECT, {"reason": "  "})
        assert (status, body["type"]) == (200, MESSAGE) and "why" in body["value"].lower()
        status, body = await stack.teams.invoke("dana", card, REJECT, {"reason": "Duplicate of PO-000100."})

        assert (status, body["type"]) == (200, CARD)
        await wait_until(lambda: stack.erp_status("PO-000125") == "rejected", what="the rejection in Dataverse")
        # The note with the reason is written right after the status change.
        await wait_until(lambda: "Duplicate of PO-000100." in json.dumps(stack.dataverse.fake.notes(stack.orders["PO-000125"])),
                         what="the reason as a note on the record")


async def test_status_questions_in_a_teams_chat_and_with_a_mention_in_a_channel_are_answered(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", chat="teams") as stack:
        await stack.send_order("PO-000123")
        await stack.teams.card("procurement", "PO-000123")

        status, _ = await stack.teams.say("dana", "status PO-000123")
        assert status == 201
        answer = await wait_until(lambda: [t for t in stack.teams.texts("dana") if "PO-000123" in t], what="Dana's answer")
        assert "Acme Supplies" in answer[-1]

        await stack.teams.say("erik", "my approvals", channel="procurement")
        # The channel is told where the answer went; the inbox itself is Erik's alone, in his 1:1 chat.
        assert stack.teams.texts("procurement")[-1] == "I've sent you the answer in our 1:1 chat."
        waiting = await wait_until(lambda: [m for m in stack.teams.messages("erik")
                                            if "waiting for your decision" in json.dumps(m.get("attachments"))],
                                   what="the inbox card in Erik's 1:1 chat")
        assert "PO-000123" in json.dumps(waiting[-1]["attachments"])


async def test_a_dataverse_request_routed_to_slack_completes(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", chat="slack") as stack:
        await stack.send_order("PO-000124")
        card = await stack.card("C0PROCURE", "PO-000124")

        await stack.click("erik", card, APPROVE)

        await wait_until(lambda: stack.erp_status("PO-000124") == "approved", what="the approval in Dataverse")
        thread = await wait_until(lambda: stack.slack.thread_replies(card.channel, card.ts), what="the what-changed thread")
        assert "What changed for PO-000124" in thread[-1].text


async def test_an_odoo_request_routed_to_teams_completes(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="odoo", chat="teams") as stack:
        await stack.send_order("P00043")
        card = await stack.teams.card("procurement", "P00043")

        status, body = await stack.teams.invoke("erik", card, APPROVE)

        assert (status, body["type"]) == (200, CARD)
        await wait_until(lambda: stack.erp_status("P00043") == "purchase", what="the approval in Odoo")
        await wait_until(lambda: stack.teams.replies(card), what="the what-changed reply")


async def test_an_approver_without_the_app_reaches_operations_with_the_fix_never_a_silent_drop(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", chat="teams", uninstalled={"fiona"}) as stack:
        await stack.send_order("PO-000123")
        card = await stack.teams.card("procurement", "PO-000123")

        await stack.teams.invoke("dana", card, APPROVE)

        alerts = await wait_until(lambda: [t for t in stack.teams.texts("ops") if "PO-000123" in t], what="an alert in ops")
        assert "Install Handoff for Fiona Finance in Teams, or add a delegate" in alerts[-1]


async def test_a_dataverse_412_at_write_back_takes_the_drift_path_and_never_overwrites_the_edit(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", chat="teams") as stack:
        await stack.send_order("PO-000124")
        card = await stack.teams.card("procurement", "PO-000124")
        stack.dataverse.edit_before_next_write("PO-000124", totalamount=9999.0)

        status, _ = await stack.teams.invoke("erik", card, APPROVE)

        assert status == 200
        await wait_until(lambda: Event.DRIFT_DETECTED in events_of(stack, "PO-000124"), what="the drift after the 412")
        assert stack.erp_status("PO-000124") == "pending approval"
        assert stack.dataverse.row("PO-000124")["totalamount"] == 9999.0
        assert Event.ERP_WRITE_FAILED not in events_of(stack, "PO-000124")
        await stack.settled()
        refreshed = stack.teams.current(card)
        assert "9,999.00" in json.dumps(refreshed.content), "the card shows the record as it is now"

        status, _ = await stack.teams.invoke("erik", refreshed, APPROVE)
        assert status == 200
        await wait_until(lambda: stack.erp_status("PO-000124") == "approved", what="the approval of the current version")
        assert stack.dataverse.row("PO-000124")["totalamount"] == 9999.0


async def test_in_local_development_an_unsigned_playground_install_and_click_work_through_its_connector_path(tmp_path):
    # As the npm Teams playground behaves (protocols.md §5): no Authorization header, serviceUrl .../_connector.
    async with local_stack(tmp_path / "handoff.db", source="odoo", chat="teams", local_development=True) as stack:
        assert stack.teams.service_url.endswith("/_connector")
        await stack.send_order("P00045")
        card = await stack.teams.card("procurement", "P00045")

        status, body = await stack.teams.invoke("dana", card, APPROVE)

        assert (status, body["type"]) == (200, CARD)
        await wait_until(lambda: stack.erp_status("P00045") == "purchase", what="the approval in Odoo")
        await wait_until(lambda: stack.teams.replies(card), what="the what-changed reply through the playground's connector")


async def test_outside_local_development_an_unsigned_teams_request_is_refused(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="odoo", chat="teams") as stack:
        stack.teams.anonymous = True
        status, body = await stack.teams.say("dana", "status P00042")
        assert status == 401
        assert "not signed by the Bot Framework" in body["error"]


def playground_session(stack) -> dict:
    """What the npm playground sends from its 1:1 chat: its own ids, no tenant of ours, its serviceUrl."""
    chat = {"id": "a:playground-personal", "conversationType": "personal", "tenantId": "00000000-0000-0000-0000-000000000001"}
    dana = {"id": "29:playground-dana", "name": "Dana Approver", "aadObjectId": stack.teams.aad("dana")}
    stack.teams.connector.add_conversation(chat["id"])
    return {"channelId": "msteams", "serviceUrl": stack.teams.service_url, "conversation": chat, "from": dana,
            "recipient": {"id": "28:playground-bot", "name": "Handoff"}}


async def test_a_playground_session_installs_then_asks_and_is_answered_in_its_chat(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="odoo", chat="teams", local_development=True) as stack:
        await stack.send_order("P00042")
        await stack.teams.card("procurement", "P00042")
        session = playground_session(stack)

        # The playground's opening sequence (protocols.md §5), then a question typed in the 1:1 chat.
        assert (await stack.teams.send({**session, "type": "installationUpdate", "action": "add"}))[0] == 201
        assert (await stack.teams.send({**session, "type": "conversationUpdate", "membersAdded": [{"id": "28:playground-bot"}]}))[0] == 201
        assert (await stack.teams.send({**session, "type": "message", "text": "status P00042"}))[0] == 201
        answer = await wait_until(lambda: [t for t in stack.teams.texts(session["conversation"]["id"]) if "P00042" in t],
                                  what="the answer")
        assert "Acme Supplies" in answer[-1]


async def test_a_question_whose_answer_cannot_be_delivered_is_still_not_a_500(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="odoo", chat="teams", local_development=True) as stack:
        # Nothing listens at this serviceUrl (the playground was closed); botbuilder's client retries, then gives up.
        gone = {**playground_session(stack), "serviceUrl": "http://127.0.0.1:9/_connector", "type": "message", "text": "status"}
        status, _ = await stack.teams.send(gone)
        assert status == 201
