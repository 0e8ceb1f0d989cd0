"""Delegation windows, who a delegated or reassigned stage reaches and who may decide it."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from handoff.bot.core import delegation, status
from handoff.bot.core.events import Event
from handoff.bot.core.models import StageMode
from handoff.bot.core.route import targets_for_stage
from handoff.state import decision_log
from handoff.state.schedule_store import ScheduleStore


def logged(core, event: str) -> list:
    return [e for e in decision_log.entries(core.store.conn) if e.event == event]


def test_a_delegation_counts_from_its_start_to_the_end_of_its_last_day(core, open_request, clock):
    clock.at = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    people = core.routing.people
    request = open_request("P00042", amount="20000")  # stage 1 procurement; fiona decides stage 2
    reply = delegation.grant(core, people["dana"], people["gus"], date(2026, 11, 25), starts=date(2026, 11, 24))
    assert "Gus Tan now decides for you from 2026-11-24 until the end of 2026-11-25" in reply
    assert logged(core, Event.DELEGATION_GRANTED)[-1].body["delegate"] == "gus"

    assert not delegation.may_decide(core, request, people["gus"]), "before the window"
    clock.at = datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc)
    assert delegation.may_decide(core, request, people["gus"]), "at its start"
    clock.at = datetime(2026, 11, 25, 23, 59, tzinfo=timezone.utc)
    assert delegation.may_decide(core, request, people["gus"]), "through its last day"
    clock.at = datetime(2026, 11, 26, 0, 0, tzinfo=timezone.utc)
    assert not delegation.may_decide(core, request, people["gus"]), "after the window"


def test_delegate_off_ends_it_now_and_is_logged(core, open_request, clock):
    people = core.routing.people
    request = open_request("P00043")
    delegation.grant(core, people["erik"], people["gus"], clock.now().date() + timedelta(days=5))
    assert delegation.may_decide(core, request, people["gus"])
    assert "Delegation to Gus Tan ended" in delegation.revoke(core, people["erik"])
    assert not delegation.may_decide(core, request, people["gus"])
    assert logged(core, Event.DELEGATION_REVOKED)[-1].body == {"delegate": "gus"}
    assert delegation.revoke(core, people["erik"]) == "You have no delegation to end."


def test_grants_that_cannot_hold_are_refused_with_the_fix(core, clock):
    people = core.routing.people
    assert "can't delegate to yourself" in delegation.grant(core, people["dana"], people["dana"], clock.now().date() + timedelta(days=1))
    assert "already past" in delegation.grant(core, people["dana"], people["gus"], clock.now().date() - timedelta(days=1))
    assert logged(core, Event.DELEGATION_GRANTED) == []


def test_a_dm_stage_reaches_the_delegate_too_but_never_a_requester(core, open_request, clock):
    people = core.routing.people
    request = open_request("P00044", amount="20000")
    finance = request.plan.stages[1]
    delegation.grant(core, people["fiona"], people["erik"], clock.now().date() + timedelta(days=1))
    reached = targets_for_stage(core.routing, request.plan, finance, {"marc"}, delegation.active(core))
    assert sorted(t.person for t in reached) == ["erik", "fiona"]
    assert [t.person for t in targets_for_stage(core.routing, request.plan, finance, {"erik"}, delegation.active(core))] == ["fiona"]
    procurement = request.plan.stages[0]
    assert [t.kind for t in targets_for_stage(core.routing, request.plan, procurement, set(), delegation.active(core))] == ["channel"]


def test_a_reassigned_stage_belongs_to_the_assignee_alone(core, open_request):
    people = core.routing.people
    request = open_request("P00045")
    assert "now rests with Gus Tan" in delegation.reassign(core, request, people["dana"], people["gus"])
    assert delegation.may_decide(core, request, people["gus"])
    assert not delegation.may_decide(core, request, people["dana"])
    assert logged(core, Event.STAGE_REASSIGNED)[-1].body == {"stage": 0, "to": "gus"}


def test_reassigning_is_for_deciders_and_never_to_the_requester(core, open_request):
    people = core.routing.people
    request = open_request("P00046")
    assert "Only someone who may decide" in delegation.reassign(core, request, people["gus"], people["erik"])
    assert "raised P00046" in delegation.reassign(core, request, people["dana"], people["marc"])
    assert logged(core, Event.STAGE_REASSIGNED) == []


def test_a_reassigned_every_member_stage_is_settled_by_its_one_decider(core, open_request):
    people = core.routing.people
    request = open_request("P00047", business_unit="EU Procurement", exception_type="compliance_review")
    assert delegation.deciding_stage(core, request).mode == StageMode.ALL
    delegation.reassign(core, request, people["dana"], people["fiona"])
    assert delegation.deciding_stage(core, request).mode == StageMode.FIRST


def test_each_escalation_step_is_taken_once_in_order_and_lets_only_the_roles_reached_so_far_decide(core, open_request, clock):
    people, due = core.routing.people, ScheduleStore(core.store)
    request = open_request("P00051", amount="20000")  # po-large: procurement managers → finance director → the CFO
    assert not delegation.may_decide(core, request, people["fiona"])
    stage = (request.id, 0)
    with core.store.transaction():
        assert not due.mark_escalated([(*stage, 1, 2)], clock.now()), "no step is skipped"
        assert due.mark_escalated([(*stage, 0, 1)], clock.now()) == {stage}
        assert not due.mark_escalated([(*stage, 0, 1)], clock.now()), "a second taker of the same step gets nothing"
    assert delegation.escalated_roles(core, request) == ("finance_director",)
    assert delegation.may_decide(core, request, people["fiona"])
    assert [r.reference for r in status.pending_for(core, people["fiona"])] == ["P00051"], "in her inbox too"
    assert not delegation.may_decide(core, request, people["carla"]), "later in the chain: not yet"

    delegation.reassign(core, request, people["dana"], people["erik"])
    with core.store.transaction():
        assert due.mark_escalated([(*stage, 1, 2)], clock.now()) == {stage}
    assert delegation.may_decide(core, request, people["carla"]), "an escalation reaches past a reassignment"
    assert delegation.may_decide(core, request, people["fiona"]) and not delegation.may_decide(core, request, people["dana"])
