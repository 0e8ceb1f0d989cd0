"""Act: turn a verified click into a counted decision, or refuse it with the reason, deterministically."""

from __future__ import annotations

import logging

from handoff.bot.faults import crash_point

from .context import Core
from .effects import Effects
from .enrich import build_packet, describe_changes, read_record
from .errors import ErpError, StoreUnavailable
from .events import Event
from .retry import with_retries
from .models import (
    Action,
    ActionResult,
    CardView,
    ChatIdentity,
    Decision,
    ErpRecord,
    Outcome,
    Person,
    RequestState,
    RequestStatus,
    StageMode,
    StagePlan,
    Verb,
    Vote,
)
from . import delegation
from .route import members, person_for_identity
from .view import card_view, inert, role_label

log = logging.getLogger(__name__)


class _Lost(Exception):
    """Raised inside a transaction to roll it back when another decision got there first."""

    def __init__(self, result: ActionResult) -> None:
        self.result = result


class Approvals:
    """The decision service chat adapters call (satisfies ports.Approvals)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def person_for(self, identity: ChatIdentity) -> Person | None:
        return person_for_identity(self.core.routing, identity.platform, identity.user_id)

    async def view(self, request_id: str) -> CardView | None:
        store = self.core.store
        request = store.get_request(request_id)
        if request is None:
            return None
        return card_view(
            request, store.stages(request_id), store.votes(request_id), store.narrative(request_id), self.core.name_of
        )

    async def act(self, action: Action) -> ActionResult:
        result = await self._act_through_a_lost_connection(action)
        crash_point("after_click")
        log.info(
            "action.handled",
            extra={"request_id": action.request_id, "verb": action.verb.value, "outcome": result.outcome.value,
                   "platform": action.actor.platform},
        )
        return result

    async def _act_through_a_lost_connection(self, action: Action) -> ActionResult:
        """A click whose transaction rolled back with the database connection is acted on once more: chat platforms
        don't resend clicks, and a second click counts once anyway."""
        try:
            return await self._act(action)
        except StoreUnavailable as lost:
            log.warning("action.retried", extra={"request_id": action.request_id, "error": str(lost)})
        try:
            return await self._act(action)
        except StoreUnavailable:
            return ActionResult(
                outcome=Outcome.STORE_UNREACHABLE,
                message="Handoff's database is unreachable right now, so your decision was not counted; try again in a minute.",
            )

    async def _act(self, action: Action) -> ActionResult:
        core = self.core
        request = core.store.get_request(action.request_id)
        if request is None:
            return ActionResult(outcome=Outcome.UNKNOWN_REQUEST, message="Handoff has no record of this request; it may come from another installation.")
        person = self.person_for(action.actor)
        refusal = self._check(action, request, person)
        if refusal is not None:
            return refusal
        assert person is not None
        stage = delegation.deciding_stage(core, request)
        if action.verb is Verb.ASK_INFO:
            return self._ask_info(action, request, person)
        try:
            if await self._unchanged(request):
                return self._record(action, request, person, stage)
            live = await read_record(core.connector(request.ref), request.ref, core.click_backoff, core.sleep)
        except ErpError as error:
            name = request.ref.source.capitalize()
            return ActionResult(
                outcome=Outcome.ERP_UNREACHABLE,
                message=f"Couldn't re-read {inert(request.reference)} from {name} ({inert(error)}). Your decision was not counted; "
                "try again in a minute.",
            )
        if not live.awaiting_approval:
            return self._closed_in_erp(request, live)
        if live.fingerprint() != request.packet.fingerprint:
            return self._drift(request, live, person)
        return self._record(action, request, person, stage)

    async def _unchanged(self, request: RequestState) -> bool:
        """True when the ERP confirms the shown record is current, which spares the click the full re-read."""
        if request.packet.incomplete_reason is not None:  # figures from the webhook are always re-read
            return False
        connector = self.core.connector(request.ref)
        record = request.packet.record
        return await with_retries(lambda: connector.unchanged(record), what=f"check {request.ref.key}",
                                  backoff=self.core.click_backoff, sleep=self.core.sleep) is True

    def _check(self, action: Action, request: RequestState, person: Person | None) -> ActionResult | None:
        """Refusals that need no ERP call: who you are, which card you clicked, whose request it is."""
        core = self.core
        if request.status is not RequestStatus.OPEN:
            view = card_view(request, core.store.stages(request.id), [], core.store.narrative(request.id), core.name_of)
            return ActionResult(outcome=Outcome.NOT_OPEN, message=f"{inert(request.reference)} is already decided. {view.headline}")
        if person is None:
            return ActionResult(
                outcome=Outcome.NOT_AN_APPROVER,
                message=f"Handoff doesn't know your {action.actor.platform} account ({action.actor.user_id}), so it can't "
                "count your decision. Ask an admin to add your id to the routing config's [people].",
            )
        if action.stage < request.stage:
            decided = next(s for s in core.store.stages(request.id) if s.stage == action.stage)
            return ActionResult(
                outcome=Outcome.ALREADY_DECIDED,
                message=f"Stage {action.stage + 1} was already decided by {core.name_of(decided.decided_by)}.",
                decided_by=core.name_of(decided.decided_by),
            )
        if action.version != request.version or action.stage != request.stage:
            return ActionResult(
                outcome=Outcome.STALE_CARD,
                message=f"This card for {inert(request.reference)} is out of date; the card has been refreshed, "
                "please decide on the current version.",
            )
        if person.key == request.requester:
            core.store.log(request.id, Event.DECISION_REFUSED, person.key, {"reason": "own_request", "verb": action.verb.value})
            return ActionResult(
                outcome=Outcome.OWN_REQUEST,
                message=f"You can't approve your own request. {inert(request.reference)} stays with "
                f"{role_label(request.plan.stages[request.stage].role)}.",
            )
        if not delegation.may_decide(core, request, person):
            roles = (request.plan.stages[request.stage].role, *delegation.escalated_roles(core, request))
            return ActionResult(
                outcome=Outcome.NOT_AN_APPROVER,
                message=f"Only {' or '.join(role_label(r) for r in roles)} can decide stage "
                f"{request.stage + 1} of {inert(request.reference)}.",
            )
        if any(v.person == person.key for v in core.store.votes(request.id, request.stage)):
            return ActionResult(outcome=Outcome.ALREADY_DECIDED, message="You already decided this stage.", decided_by=person.name)
        return None

    def _ask_info(self, action: Action, request: RequestState, person: Person) -> ActionResult:
        core, now, question = self.core, self.core.clock.now(), action.comment or ""
        requester = core.routing.people.get(request.requester) if request.requester else None
        try:
            with core.store.transaction() as conn:
                self._settle(action)  # the question is asked in the thread once, however often the click is replayed
                core.store.log(request.id, Event.INFO_REQUESTED, person.key, {"question": question, "stage": request.stage})
                effects = Effects(conn, now)
                effects.thread(request.id, f"{person.name} asks: {inert(question)}", mention=requester.key if requester else None)
                effects.update_cards(request.id)
        except _Lost as lost:
            return lost.result
        core.wake()
        who = requester.name if requester else "the requester"
        return ActionResult(outcome=Outcome.INFO_REQUESTED, message=f"Your question was sent to {who} in the card's thread.")

    def _settle(self, action: Action) -> None:
        """Settle the stored click in the transaction that acts on it: a click another run already settled does nothing."""
        if action.inbox_id is not None and not self.core.store.settle_click(action.inbox_id, f"{action.verb.value} counted"):
            raise _Lost(ActionResult(outcome=Outcome.ALREADY_DECIDED, message="This click was already counted."))

    def _closed_in_erp(self, request: RequestState, live: ErpRecord) -> ActionResult:
        core = self.core
        with core.store.transaction() as conn:
            close_in_erp(core, conn, request, live)
        core.wake()
        return ActionResult(
            outcome=Outcome.NOT_OPEN,
            message=f"{inert(request.reference)} was already decided in {request.ref.source.capitalize()} "
            f"(state {inert(live.state)}); nothing was recorded here.",
        )

    def _drift(self, request: RequestState, live: ErpRecord, person: Person) -> ActionResult:
        changes = refresh_packet(self.core, request, live, seen_by=person.key)
        self.core.wake()
        return ActionResult(
            outcome=Outcome.DRIFTED,
            message=f"{inert(request.reference)} changed in {request.ref.source.capitalize()} since this card was built "
            f"({inert('; '.join(changes))}). Your decision was not counted; the card now shows the current version.",
        )

    def _record(self, action: Action, request: RequestState, person: Person, stage: StagePlan) -> ActionResult:
        core, now = self.core, self.core.clock.now()
        try:
            with core.store.transaction() as conn:
                return self._record_in(conn, action, person, stage, now)
        except _Lost as lost:
            return lost.result
        finally:
            core.wake()

    def _record_in(self, conn, action: Action, person: Person, stage: StagePlan, now) -> ActionResult:
        core, store = self.core, self.core.store
        request = store.get_request(action.request_id)
        assert request is not None
        self._settle(action)
        if request.status is not RequestStatus.OPEN or request.stage != action.stage or request.version != action.version:
            winner = next((s.decided_by for s in store.stages(request.id) if s.stage == action.stage and s.decided_by), None)
            raise _Lost(ActionResult(
                outcome=Outcome.ALREADY_DECIDED,
                message=f"{core.name_of(winner)} decided this stage a moment before you; your click was not counted.",
                decided_by=core.name_of(winner),
            ))
        vote = Vote(stage=stage.index, person=person.key, verb=action.verb, version=action.version, comment=action.comment, at=now)
        if not store.add_vote(request.id, vote):
            raise _Lost(ActionResult(outcome=Outcome.ALREADY_DECIDED, message="You already decided this stage."))
        store.log(request.id, Event.DECISION_RECORDED, person.key, {
            "stage": stage.index, "verb": action.verb.value, "version": action.version, "comment": action.comment,
            "platform": action.actor.platform, "chat_user": action.actor.user_id,
        })
        effects = Effects(conn, now)
        outcome = stage_outcome(stage, store.votes(request.id, stage.index), eligible=self._eligible(stage, request))
        if outcome is None:
            effects.update_cards(request.id)
            return ActionResult(outcome=Outcome.RECORDED, message="Your approval was recorded; the stage needs more approvals.")
        if not store.decide_stage(request.id, stage.index, outcome, person.key, now):
            raise _Lost(ActionResult(outcome=Outcome.ALREADY_DECIDED, message="Someone decided this stage a moment before you."))
        store.log(request.id, Event.STAGE_COMPLETED, person.key, {"stage": stage.index, "outcome": outcome})
        effects.update_cards(request.id)
        is_last = stage.index == len(request.plan.stages) - 1
        if outcome == "approved" and not is_last:
            nxt = request.plan.stages[stage.index + 1]
            store.advance_stage(request.id, nxt.index, now)
            post_stage_cards(core, effects, request, nxt)
            return ActionResult(
                outcome=Outcome.STAGE_DECIDED,
                message=f"Approved. {inert(request.reference)} moves on to {role_label(nxt.role)} (stage {nxt.index + 1}).",
                decided_by=person.name,
            )
        status = RequestStatus.APPROVED if outcome == "approved" else RequestStatus.REJECTED
        store.set_status(request.id, status, now)
        effects.erp_write(request.id, request.version, Decision(verb=action.verb, by=person.name, reason=action.comment, at=now))
        return ActionResult(
            outcome=Outcome.REQUEST_DECIDED,
            message=f"{status.value.capitalize()}. Handoff is writing it back to {request.ref.source.capitalize()}.",
            decided_by=person.name,
        )

    def _eligible(self, stage: StagePlan, request: RequestState) -> int:
        return sum(1 for p in members(self.core.routing, stage.role) if p.key != request.requester)


def stage_outcome(stage: StagePlan, votes: list[Vote], eligible: int) -> str | None:
    """'approved', 'rejected', or None while the stage still needs votes. Any rejection rejects the stage."""
    if any(v.verb is Verb.REJECT for v in votes):
        return "rejected"
    approvals = sum(1 for v in votes if v.verb is Verb.APPROVE)
    needed = {StageMode.FIRST: 1, StageMode.QUORUM: stage.quorum, StageMode.ALL: eligible}[stage.mode]
    return "approved" if approvals >= needed else None


def post_stage_cards(core: Core, effects: Effects, request: RequestState, stage: StagePlan) -> int:
    """Queue the stage's cards; a stage nobody can receive is a routing failure that reaches operations."""
    from .route import ops_target, targets_for_stage

    exclude = {request.requester} if request.requester else set()
    targets = targets_for_stage(core.routing, request.plan, stage, exclude, delegation.active(core))
    for target in targets:
        effects.post_card(request.id, stage.index, target)
    if not targets:
        reason = (
            f"nobody can receive stage {stage.index + 1} of {inert(request.reference)}: every member of "
            f"{role_label(stage.role)} is the requester or unreachable. Fix: add another member to role "
            f"'{stage.role}' in the routing config, or add a delegate."
        )
        core.store.log(request.id, Event.ROUTING_FAILED, "handoff", {"reason": reason, "stage": stage.index})
        effects.notify(ops_target(core.routing, request.platform), f"Routing failed: {reason}", request.id)
    return len(targets)


def refresh_packet(
    core: Core, request: RequestState, live: ErpRecord, seen_by: str, reopen_stage: int | None = None
) -> list[str]:
    """Show the live record as a new version; clicks on the old version no longer count.

    `reopen_stage` is for a decision the ERP refused because the record changed (HTTP 412): that stage is decided again.
    """
    changes = describe_changes(request.packet.record, live)
    packet = build_packet(request.id, request.version + 1, live, request.packet.policy_notes)
    with core.store.transaction() as conn:
        if reopen_stage is not None:
            core.store.reopen_stage(request.id, reopen_stage, core.clock.now())
        core.store.replace_packet(request.id, packet, core.clock.now())
        core.store.log(request.id, Event.DRIFT_DETECTED, seen_by, {
            "from_version": request.version, "to_version": packet.version, "changes": changes,
            "fingerprint": packet.fingerprint,
        })
        Effects(conn, core.clock.now()).update_cards(request.id)
    return changes


def close_in_erp(core: Core, conn, request: RequestState, live: ErpRecord) -> None:
    """The ERP decided without us: close the card, say who and when, never write back."""
    outcome = live.erp_decision or f"moved to {live.state}"
    core.store.set_status(request.id, RequestStatus.CLOSED_IN_ERP, core.clock.now())
    core.store.log(request.id, Event.REQUEST_CLOSED_IN_ERP, "erp", {
        "outcome": outcome, "state": live.state, "decided_by": live.decided_by,
        "decided_at": live.decided_at.isoformat() if live.decided_at else None,
    })
    effects = Effects(conn, core.clock.now())
    effects.update_cards(request.id)
    effects.what_changed(request.id)
