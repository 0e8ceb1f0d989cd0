"""Status answers: where a request stands, who holds it, for how long, what waits for whom, what is stuck — only for people allowed to see it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from handoff.state import delegation_store

from . import delegation
from .context import Core
from .models import Person, RequestState, RequestStatus
from .route import members
from .view import escalation_note, history, inert, role_label

HELP = (
    "Ask me `status <reference>` (for example `status P00042`), a part of a reference, or a vendor name. "
    "I answer with the stage, who holds it, for how long, and the latest events. "
    "`pending` lists what waits for your decision, `stuck` what waits longer than its SLA, and "
    "`delegate @someone until 2026-12-01` (or `delegate off`) hands your approvals over while you are away."
)
UNKNOWN_PERSON = (
    "Handoff doesn't know your chat account, so it can't tell which requests you may see. "
    "Ask an admin to add you to the routing config."
)
PICKS = 5


class Intent(StrEnum):
    HELP = "help"
    STATUS = "status"
    PENDING = "pending"
    STUCK = "stuck"
    DELEGATE = "delegate"


_PENDING = re.compile(r"^(pending|inbox|what'?s pending( for me)?|what is pending( for me)?|my approvals)\??$", re.IGNORECASE)
_STUCK = re.compile(r"^(stuck|stalled|what'?s stuck|what is stuck|overdue)\??$", re.IGNORECASE)


def intent(text: str) -> tuple[Intent, str]:
    """What a question asks for, and its argument (a reference for status, the rest for delegate)."""
    cleaned = re.sub(r"[’`]", "'", text.strip())
    if _PENDING.match(cleaned):
        return Intent.PENDING, ""
    if _STUCK.match(cleaned):
        return Intent.STUCK, ""
    head, _, rest = cleaned.partition(" ")
    if head.lower() == "delegate":
        return Intent.DELEGATE, rest.strip()
    query = re.sub(r"^status\s*", "", cleaned, flags=re.IGNORECASE).strip()
    if not query or query.lower() in {"help", "?"}:
        return Intent.HELP, ""
    return Intent.STATUS, query


def _age(since: datetime, now: datetime) -> str:
    minutes = int((now - since).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h {minutes % 60} min" if hours < 48 else f"{hours // 24} days"


def may_see(core: Core, person: Person, request: RequestState) -> bool:
    """A person sees their business units' requests and any request they take part in."""
    if person.business_units and request.packet.record.business_unit in person.business_units:
        return True
    if request.requester == person.key:
        return True
    roles = {stage.role for stage in request.plan.stages}
    if any(person.key in {p.key for p in members(core.routing, role)} for role in roles):
        return True
    return request.status is RequestStatus.OPEN and delegation.may_decide(core, request, person)


def answer(core: Core, person: Person | None, text: str) -> str:
    """The reply to a status, pending or stuck question, in plain text."""
    kind, query = intent(text)
    if kind in (Intent.HELP, Intent.DELEGATE):
        return HELP
    if person is None:
        return UNKNOWN_PERSON
    if kind is Intent.PENDING:
        waiting = pending_for(core, person)
        if not waiting:
            return "Nothing waits for your decision."
        return f"{len(waiting)} waiting for your decision:\n" + "\n".join(f"• {line(core, r)}" for r in waiting)
    if kind is Intent.STUCK:
        return stuck_text(core, person)
    found = [r for r in core.store.find_requests(query) if may_see(core, person, r)]
    if not found:
        found = [r for r in _by_vendor(core, query) if may_see(core, person, r)]
    if not found:
        return (f"No request you can see matches “{inert(query)}”. Try the full reference (e.g. `status P00042`), "
                "the last digits of it, or a vendor name; `pending` lists what waits for you.")
    if len(found) > 1:
        picks = "\n".join(f"• {inert(r.reference)} — {inert(r.packet.record.vendor)}, {r.packet.record.amount:,.2f} "
                          f"{inert(r.packet.record.currency)} ({r.status.value.replace('_', ' ')})" for r in found[:PICKS])
        return f"Several requests match “{inert(query)}”. Which one? Ask `status <reference>`:\n{picks}"
    return describe(core, found[0])


def _by_vendor(core: Core, query: str) -> list[RequestState]:
    needle = query.lower()
    return [r for r in core.store.requests_by_status(RequestStatus.OPEN) if needle in r.packet.record.vendor.lower()][:PICKS]


def stage_started(core: Core, request: RequestState) -> datetime:
    """When the current stage began waiting."""
    started = next((s.started_at for s in core.store.stages(request.id) if s.stage == request.stage), None)
    return started or request.created_at


def holders(core: Core, request: RequestState) -> str:
    """Who may decide the current stage, by name: the assignee alone, or the role's members and their delegates."""
    assignee = delegation_store.assignee(core.store.conn, request.id, request.stage)
    if assignee is not None:
        return core.name_of(assignee)
    stand_ins = delegation.active(core)
    names = []
    for person in members(core.routing, request.plan.stages[request.stage].role):
        if person.key == request.requester:
            continue
        delegate = stand_ins.get(person.key)
        names.append(f"{person.name} (delegated to {core.name_of(delegate)})" if delegate else person.name)
    return ", ".join(names) or "nobody"


def line(core: Core, request: RequestState) -> str:
    """One request in a list: reference, vendor, amount, stage, waiting time."""
    record = request.packet.record
    waited = _age(stage_started(core, request), core.clock.now())
    return (f"{inert(request.reference)} — {inert(record.vendor)}, {record.amount:,.2f} {inert(record.currency)}; "
            f"stage {request.stage + 1} of {len(request.plan.stages)}, waiting {waited}")


def pending_for(core: Core, person: Person) -> list[RequestState]:
    """Open requests whose current stage this person may decide and hasn't yet, oldest first."""
    return [
        r for r in core.store.requests_by_status(RequestStatus.OPEN)
        if r.requester != person.key
        and delegation.may_decide(core, r, person)
        and not any(v.person == person.key for v in core.store.votes(r.id, r.stage))
    ]


def stuck_for(core: Core, person: Person) -> list[tuple[RequestState, timedelta]]:
    """Open requests the person may see whose current stage has waited longer than its SLA, oldest first."""
    now, out = core.clock.now(), []
    for request in core.store.requests_by_status(RequestStatus.OPEN):
        waited = now - stage_started(core, request)
        if waited > timedelta(hours=request.plan.stages[request.stage].sla_hours) and may_see(core, person, request):
            out.append((request, waited))
    return sorted(out, key=lambda pair: pair[1], reverse=True)


def stuck_text(core: Core, person: Person) -> str:
    """The stuck list in words, with each stage's SLA and who holds it."""
    stuck = stuck_for(core, person)
    if not stuck:
        return "Nothing you can see is past its SLA."
    lines = []
    for request, _ in stuck:
        sla = request.plan.stages[request.stage].sla_hours
        lines.append(f"• {line(core, request)} (SLA {sla:g} h), held by {holders(core, request)}")
    return f"{len(stuck)} past their SLA, oldest first:\n" + "\n".join(lines)


def describe(core: Core, request: RequestState) -> str:
    """One request's status: stage, holders, waiting time, the last three events and the record link."""
    now = core.clock.now()
    record = request.packet.record
    lines = [f"{inert(request.reference)} — {inert(record.vendor)}, {record.amount:,.2f} {inert(record.currency)}"]
    if request.status is RequestStatus.OPEN:
        stage = request.plan.stages[request.stage]
        lines.append(
            f"Stage {request.stage + 1} of {len(request.plan.stages)}: waiting for {role_label(stage.role)} "
            f"({holders(core, request)}) for {_age(stage_started(core, request), now)}."
        )
        if escalated := delegation.escalated_roles(core, request):
            names = ", ".join(dict.fromkeys(p.name for role in escalated for p in members(core.routing, role) if p.key != request.requester))
            lines.append(f"{escalation_note(stage.escalate_to, len(escalated))} They may decide it too: {names or 'nobody'}.")
    else:
        lines.append(f"Status: {request.status.value.replace('_', ' ')}.")
    recent = history(core.store.narrative(request.id), core.name_of)[-3:]
    lines.extend(f"• {inert(event)}" for event in recent)
    if record.url:
        lines.append(f"Record: {inert(record.url)}")
    return "\n".join(lines)
