"""Status questions asked in a Teams channel, over real HTTP: the answer goes to the asker's 1:1 chat, never the channel."""

from __future__ import annotations

import json

import pytest

from handoff.bot.channels.teams_bot import PRIVATE_SENT, PRIVATE_UNREACHABLE
from handoff.bot.fakes.stack import local_stack
from handoff.bot.fakes.waiting import wait_until


@pytest.fixture
async def stack(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", chat="teams", clock=clock, uninstalled={"erik"}) as running:
        await running.send_order("P00043")
        await running.teams.card("procurement", "P00043")
        yield running


def said_since(stack, where: str, seen: int) -> list[dict]:
    return stack.teams.messages(where)[seen:]


async def test_a_status_mention_in_a_channel_is_answered_in_the_askers_1to1_and_the_channel_sees_only_a_pointer(stack):
    seen = len(stack.teams.messages("procurement"))

    status, _ = await stack.teams.say("dana", "status P00043", channel="procurement")

    assert status == 201
    answers = await wait_until(lambda: [t for t in stack.teams.texts("dana") if "P00043" in t], what="Dana's answer in her 1:1")
    assert "Procurement manager" in answers[-1]
    [pointer] = said_since(stack, "procurement", seen)
    assert pointer["text"] == PRIVATE_SENT and "P00043" not in json.dumps(pointer)
    # The 1:1 was opened for the asker, by the MRI and Entra id the channel message carried.
    [member] = stack.teams.connector.created[-1]["members"]
    assert member == {"id": stack.teams.connector.mri(stack.teams.aad("dana")), "aadObjectId": stack.teams.aad("dana")}


async def test_pending_asked_in_a_channel_sends_the_inbox_card_to_the_1to1(stack):
    seen = len(stack.teams.messages("procurement"))

    await stack.teams.say("dana", "what's pending for me", channel="procurement")

    inbox = await wait_until(lambda: [m for m in stack.teams.messages("dana") if "waiting for your decision" in json.dumps(m)],
                             what="the inbox card in Dana's 1:1")
    assert "P00043" in json.dumps(inbox[-1]["attachments"])
    assert [m.get("text") for m in said_since(stack, "procurement", seen)] == [PRIVATE_SENT]


async def test_an_asker_handoff_cannot_reach_privately_is_told_how_to_fix_it_and_the_channel_learns_nothing(stack):
    seen = len(stack.teams.messages("procurement"))

    status, _ = await stack.teams.say("erik", "what's stuck", channel="procurement")

    assert status == 201
    [refusal] = said_since(stack, "procurement", seen)
    assert refusal["text"] == PRIVATE_UNREACHABLE and "Install Handoff for yourself" in refusal["text"]
    assert stack.teams.messages("erik") == [], "Teams refused the 1:1, so nothing went anywhere else"


async def test_questions_in_a_1to1_and_help_in_a_channel_are_answered_where_asked(stack):
    await stack.teams.say("dana", "status P00043")
    assert await wait_until(lambda: [t for t in stack.teams.texts("dana") if "P00043" in t], what="the answer in the 1:1")
    seen = len(stack.teams.messages("procurement"))

    await stack.teams.say("dana", "help", channel="procurement")

    [help_text] = said_since(stack, "procurement", seen)
    assert "for example" in help_text["text"] and help_text["text"] != PRIVATE_SENT


async def test_a_channel_message_that_does_not_mention_handoff_gets_no_answer(stack):
    """With the RSC read permissions Teams forwards every channel message; only those addressed to Handoff are its own."""
    seen_channel, seen_dm = len(stack.teams.messages("procurement")), len(stack.teams.messages("dana"))
    chatter = stack.teams._activity("message", "procurement", stack.teams._person("dana"), text="status P00043", textFormat="plain")

    status, _ = await stack.teams.send(chatter)
    await stack.teams.say("dana", "status P00043", channel="procurement")  # addressed: answered, and marks the time

    await wait_until(lambda: said_since(stack, "procurement", seen_channel), what="the pointer for the addressed question")
    assert status == 201
    assert [m.get("text") for m in said_since(stack, "procurement", seen_channel)] == [PRIVATE_SENT]
    assert len([m for m in said_since(stack, "dana", seen_dm) if "P00043" in json.dumps(m)]) == 1
