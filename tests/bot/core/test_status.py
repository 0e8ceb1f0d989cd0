"""Status answers: what a question asks, who may see what, pending and stuck lists, pick lists."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handoff.bot.core import delegation, status
from handoff.bot.core.models import Verb, Vote
from handoff.bot.core.status import Intent


@pytest.mark.parametrize(("text", "expected"), [
    ("status P00042", (Intent.STATUS, "P00042")),
    ("  00042 ", (Intent.STATUS, "00042")),
    ("what's pending for me?", (Intent.PENDING, "")),
    ("What’s pending for me", (Intent.PENDING, "")),
    ("pending", (Intent.PENDING, "")),
    ("what's stuck", (Intent.STUCK, "")),
    ("delegate <@U0ERIK|erik> until 2026-12-01", (Intent.DELEGATE, "<@U0ERIK|erik> until 2026-12-01")),
    ("", (Intent.HELP, "")),
    ("status help", (Intent.HELP, "")),
])
def test_questions_are_read_as_what_they_ask(text, expected):
    assert status.intent(text) == expected


def test_people_see_their_units_their_own_requests_and_those_they_decide(core, open_request):
    eu = open_request("P00042", business_unit="EU Procurement", requester="priya@example.com")
    own = open_request("P00050", business_unit="US Ops", requester="marc@example.com")
    people = core.routing.people
    assert status.may_see(core, people["marc"], eu), "same business unit"
    assert status.may_see(core, people["marc"], own), "their own request"
    assert status.may_see(core, people["fiona"], open_request("P00051", amount="20000", business_unit="US Ops")), "a stage they decide"
    assert not status.may_see(core, people["gus"], eu)
    assert "No request you can see matches “P00042”" in status.answer(core, people["gus"], "status P00042")


def test_a_delegate_sees_what_they_may_now_decide(core, open_request, clock):
    request = open_request("P00043", business_unit="US Ops")
    people = core.routing.people
    assert not status.may_see(core, people["gus"], request)
    delegation.grant(core, people["dana"], people["gus"], clock.now().date() + timedelta(days=1))
    assert status.may_see(core, people["gus"], request)
    assert "Dana Approver (delegated to Gus Tan)" in status.describe(core, request)


def test_a_vague_question_gets_a_pick_list_and_an_unknown_one_a_way_to_search(core, open_request):
    for reference, vendor in (("P00042", "Acme Supplies"), ("P00045", "Acme Supplies"), ("P00043", "Northwind Traders")):
        open_request(reference, vendor=vendor)
    dana = core.routing.people["dana"]
    picks = status.answer(core, dana, "status acme")
    assert picks.startswith("Several requests match “acme”") and "P00042" in picks and "P00045" in picks and "P00043" not in picks
    assert status.answer(core, dana, "status 00043").startswith("P00043 — Northwind Traders")
    unknown = status.answer(core, dana, "status nothing-like-it")
    assert "No request you can see" in unknown and "vendor name" in unknown
    assert "doesn't know your chat account" in status.answer(core, None, "status P00042")


def test_pending_leaves_out_own_requests_and_stages_already_decided_by_the_asker(core, open_request, clock):
    mine = open_request("P00060", requester="dana@example.com")
    voted = open_request("P00061", amount="20000")
    waiting = open_request("P00062")
    core.store.add_vote(voted.id, Vote(stage=0, person="dana", verb=Verb.APPROVE, version=1, at=clock.now()))
    dana = core.routing.people["dana"]
    assert [r.reference for r in status.pending_for(core, dana)] == [waiting.reference]
    assert mine.reference in [r.reference for r in status.pending_for(core, core.routing.people["erik"])]
    assert status.pending_for(core, core.routing.people["fiona"]) == []


def test_stuck_is_what_waited_past_its_sla_oldest_first(core, open_request, clock):
    first = open_request("P00070")
    clock.advance(hours=3)
    second = open_request("P00071")
    dana = core.routing.people["dana"]
    clock.advance(hours=5, minutes=30)  # 8.5 h and 5.5 h: only the first is past its 8 h SLA
    assert [r.reference for r, _ in status.stuck_for(core, dana)] == [first.reference]
    clock.advance(hours=3)
    assert [r.reference for r, _ in status.stuck_for(core, dana)] == [first.reference, second.reference]
    assert "SLA 8 h" in status.answer(core, dana, "stuck")
    assert status.stuck_for(core, core.routing.people["gus"]) == []
