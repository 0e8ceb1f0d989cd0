"""Delegation and reassignment: who may decide a stage besides its role, and in which window."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta, timezone

from handoff.state import delegation_store
from handoff.state.schedule_store import ScheduleStore

from .context import Core
from .effects import Effects
from .events import Event
from .models import Person, RequestState, RequestStatus, StageMode, StagePlan, Target
from .route import can_decide, members, platform_of
from .view import inert, role_label

log = logging.getLogger(__name__)

_DATE = re.compile(r"\b(until|from)\s+(\S+)", re.IGNORECASE)


def active(core: Core) -> dict[str, str]:
    """delegator key -> delegate key for the windows open now."""
    return delegation_store.active(core.store.conn, core.clock.now())


def escalated_roles(core: Core, request: RequestState) -> tuple[str, ...]:
    """The roles the current stage has been escalated to so far, in chain order; later roles in the chain not yet."""
    stage = request.plan.stages[request.stage]
    return stage.escalate_to[:ScheduleStore(core.store).escalation_level(request.id, request.stage)]


def may_decide(core: Core, request: RequestState, person: Person) -> bool:
    """The roles escalated to so far; then a reassigned stage's assignee alone, else the role's members and their delegates."""
    stage = request.plan.stages[request.stage]
    # An escalation outranks a reassignment: whoever it reached was asked to decide because the stage stalled.
    if any(member.key == person.key for role in escalated_roles(core, request) for member in members(core.routing, role)):
        return True
    assignee = delegation_store.assignee(core.store.conn, request.id, request.stage)
    if assignee is not None:
        return person.key == assignee
    if can_decide(core.routing, stage, person):
        return True
    delegators = {delegator for delegator, delegate in active(core).items() if delegate == person.key}
    return any(member.key in delegators for member in members(core.routing, stage.role))


def deciding_stage(core: Core, request: RequestState) -> StagePlan:
    """The current stage as it is decided now: a reassigned stage has one decider, so their decision settles it."""
    stage = request.plan.stages[request.stage]
    if delegation_store.assignee(core.store.conn, request.id, request.stage) is None:
        return stage
    return stage.model_copy(update={"mode": StageMode.FIRST, "quorum": 1})


def candidates(core: Core, request: RequestState) -> list[Person]:
    """Whom the current stage may be reassigned to: its role's and its escalation chain's members, never the requester."""
    stage = request.plan.stages[request.stage]
    roles = [stage.role, *stage.escalate_to]
    found: dict[str, Person] = {}
    for role in roles:
        found.update((p.key, p) for p in members(core.routing, role) if p.key != request.requester)
    return list(found.values())


def parse_window(text: str, help_text: str) -> tuple[date, date | None]:
    """(until, from) out of "… until YYYY-MM-DD [from YYYY-MM-DD]"; ValueError says what to write instead."""
    dates: dict[str, date] = {}
    for word, value in _DATE.findall(text):
        try:
            dates[word.lower()] = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"“{value}” is not a date Handoff reads. Write it as YYYY-MM-DD. {help_text}") from None
    if "until" not in dates:
        raise ValueError(f"Until when? {help_text}")
    return dates["until"], dates.get("from")


def without_window(text: str) -> str:
    """The text with its "until …" and "from …" removed: what names the delegate."""
    return " ".join(_DATE.sub(" ", text).split())


def grant(core: Core, delegator: Person, delegate: Person, until: date, starts: date | None = None) -> str:
    """Route `delegator`'s approvals to `delegate` from `starts` (default now) to the end of `until` (UTC); logged."""
    now = core.clock.now()
    begins = _midnight(starts) if starts else now
    ends = _midnight(until + timedelta(days=1))
    if delegate.key == delegator.key:
        return "You can't delegate to yourself. Name someone else: `delegate @someone until 2026-12-01`."
    if ends <= max(begins, now):
        return f"{until.isoformat()} is already past, so nothing was delegated. Pick a later date."
    with core.store.transaction():
        delegation_store.grant(core.store.conn, delegator.key, delegate.key, begins, ends)
        core.store.log(None, Event.DELEGATION_GRANTED, delegator.key, {
            "delegate": delegate.key, "starts_at": begins.isoformat(), "ends_at": ends.isoformat(),
        })
    log.info("delegation.granted", extra={"delegator": delegator.key, "delegate": delegate.key, "ends_at": ends.isoformat()})
    start = "" if starts is None else f" from {starts.isoformat()}"
    return (f"{delegate.name} now decides for you{start} until the end of {until.isoformat()} (UTC). "
            "New cards that would reach you by DM reach them too. `delegate off` ends it early.")


def revoke(core: Core, delegator: Person) -> str:
    """End `delegator`'s delegation now; logged."""
    with core.store.transaction():
        ended = delegation_store.revoke(core.store.conn, delegator.key)
        if ended is not None:
            core.store.log(None, Event.DELEGATION_REVOKED, delegator.key, {"delegate": ended.delegate})
    if ended is None:
        return "You have no delegation to end."
    return f"Delegation to {core.name_of(ended.delegate)} ended: your approvals come to you again."


def reassign(core: Core, request: RequestState, by: Person, to: Person) -> str:
    """Move the current stage's decision to one person: logged, a DM card for them, the cards updated."""
    if request.status is not RequestStatus.OPEN:
        return f"{inert(request.reference)} is already decided, so it can't be reassigned."
    if not may_decide(core, request, by):
        return f"Only someone who may decide stage {request.stage + 1} of {inert(request.reference)} can reassign it."
    if to.key == request.requester:
        return f"{to.name} raised {inert(request.reference)}, so they can't decide it. Pick someone else."
    platform = platform_of(core.routing, request.plan)
    address = getattr(to, platform)
    if not address:
        return f"Handoff has no {platform} id for {to.name}, so it can't send them the card. Ask an admin to add it to the routing config."
    now = core.clock.now()
    with core.store.transaction() as conn:
        delegation_store.reassign(conn, request.id, request.stage, to.key, now)
        core.store.log(request.id, Event.STAGE_REASSIGNED, by.key, {"stage": request.stage, "to": to.key})
        effects = Effects(conn, now)
        effects.post_card(request.id, request.stage, Target(platform=platform, kind="dm", address=address, person=to.key))
        effects.update_cards(request.id)
    core.wake()
    return f"Stage {request.stage + 1} of {inert(request.reference)} ({role_label(request.plan.stages[request.stage].role)}) now rests with {to.name}."


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)
