"""Where a request stands, in words: the card view and the narrative sentences every platform shows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from .events import Event
from .models import CardView, RequestState, RequestStatus, StageMode, StageState, Verb, Vote


class Entry(Protocol):
    """A decision-log entry as the core reads it (state.decision_log.LogEntry satisfies it)."""

    seq: int
    at: str
    event: str
    actor: str
    body: dict


NameOf = Callable[[str | None], str]

_VERB_PAST = {Verb.APPROVE: "approved", Verb.REJECT: "rejected", Verb.ASK_INFO: "asked for info"}


def inert(value: object) -> str:
    """ERP or people's text for a chat sentence: its backticks become look-alikes, so only our template opens code spans
    (the look-alike is cards/escape.py's; the chat adapters escape everything else in a value)."""
    return str(value).replace("`", "\u02cb")


def role_label(role: str) -> str:
    return role.replace("_", " ").capitalize()


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def escalation_note(chain: tuple[str, ...], level: int) -> str:
    """Where a stage stands on its escalation chain, for the stall alert and status answers; "" before the first step."""
    if level <= 0 or not chain:
        return ""
    reached = role_label(chain[min(level, len(chain)) - 1])
    if len(chain) == 1:
        return f"Escalated to {reached}."
    if level < len(chain):
        return (f"Escalated to {reached} ({ordinal(level)} escalation of {len(chain)}; "
                f"{role_label(chain[level])} follows if it waits another SLA).")
    return f"Escalated to {reached} ({ordinal(level)} escalation, the last of its chain; the reminders go on)."


def clock_time(at: str | datetime) -> str:
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.strftime("%d %b %H:%M UTC")


def sentence(entry: Entry, name_of: NameOf) -> str | None:
    """One narrative event in plain words, or None for bookkeeping nobody needs to read."""
    body, who = entry.body, name_of(entry.actor)
    match entry.event:
        case Event.REQUEST_RECEIVED:
            return f"{body.get('trigger', 'ERP event')} for {inert(body.get('reference', 'the record'))}"
        case Event.PACKET_ROUTED:
            return f"Routed by rule {body['rule']} to {', '.join(role_label(r) for r in body['roles'])}"
        case Event.ROUTING_FAILED:
            return f"Routing failed: {body['reason']}"
        case Event.DECISION_RECORDED:
            text = f"{who} {_VERB_PAST[Verb(body['verb'])]} (stage {body['stage'] + 1})"
            return text + (f": “{inert(body['comment'])}”" if body.get("comment") else "")
        case Event.INFO_REQUESTED:
            return f"{who} asked for info: “{inert(body['question'])}”"
        case Event.INFO_PROVIDED:
            return f"{who} answered: “{inert(body['answer'])}”"
        case Event.DRIFT_DETECTED:
            return f"Record changed in the ERP before a decision counted: {inert('; '.join(body['changes']))}"
        case Event.STAGE_REASSIGNED:
            return f"{who} reassigned stage {body['stage'] + 1} to {name_of(body['to'])}"
        case Event.REQUEST_STALLED:
            return f"Stalled: stage {body['stage'] + 1} passed its {body['sla_hours']:g} h SLA waiting for {role_label(body['role'])}"
        case Event.STAGE_ESCALATED:
            level = body.get("level", 1)
            step = f" ({ordinal(level)} escalation, from {role_label(body['from'])})" if level > 1 else ""
            return f"Escalated stage {body['stage'] + 1} to {role_label(body['to'])}{step}"
        case Event.STAGE_COMPLETED:
            return f"Stage {body['stage'] + 1} {body['outcome']}"
        case Event.ERP_UPDATED:
            return f"Written to the ERP: {body['action']} (state now {body['state']})"
        case Event.ERP_WRITE_FAILED:
            return f"Write-back failed: {inert(body['error'])}"
        case Event.REQUEST_CLOSED_IN_ERP:
            by = f" by {inert(body['decided_by'])}" if body.get("decided_by") else ""
            at = f" at {clock_time(body['decided_at'])}" if body.get("decided_at") else ""
            return f"{body['outcome'].capitalize()} directly in the ERP{by}{at}"
        case Event.REQUEST_COMPLETED:
            return f"Request {body['status']}"
    return None


def history(entries: Iterable[Entry], name_of: NameOf) -> tuple[str, ...]:
    lines = []
    for entry in entries:
        text = sentence(entry, name_of)
        if text:
            lines.append(f"{clock_time(entry.at)} · {text}")
    return tuple(lines)


def headline(
    request: RequestState, stages: list[StageState], votes: list[Vote], entries: list[Entry], name_of: NameOf
) -> str:
    plan = request.plan
    if request.status is RequestStatus.OPEN:
        stage = plan.stages[request.stage]
        waiting = f"Waiting for {role_label(stage.role)} (stage {request.stage + 1} of {len(plan.stages)})"
        approvals = sum(1 for v in votes if v.stage == request.stage and v.verb is Verb.APPROVE)
        if stage.mode is StageMode.QUORUM:
            waiting += f": {approvals} of {stage.quorum} approvals"
        elif stage.mode is StageMode.ALL:
            waiting += f": {approvals} approvals so far, every member must approve"
        escalated = [e.body for e in entries if e.event == Event.STAGE_ESCALATED and e.body.get("stage") == request.stage]
        if escalated:
            latest = escalated[-1]
            level, sla = latest.get("level", 1), latest["sla_hours"]
            waiting += (f" · escalated to {role_label(latest['to'])} after its {sla:g} h SLA" if level == 1 else
                        f" · escalated to {role_label(latest['to'])} ({ordinal(level)} escalation) after {level} × its {sla:g} h SLA")
        return waiting
    names = ", ".join(f"{name_of(s.decided_by)} (stage {s.stage + 1})" for s in stages if s.decided_by)
    written = any(e.event == Event.ERP_UPDATED for e in entries)
    erp = f"{request.ref.source.capitalize()} updated." if written else f"Writing it back to {request.ref.source.capitalize()}…"
    match request.status:
        case RequestStatus.APPROVED:
            return f"Approved by {names}. {erp}"
        case RequestStatus.REJECTED:
            return f"Rejected by {names}. {erp}"
        case RequestStatus.CLOSED_IN_ERP:
            return "Decided directly in the ERP; nothing more to do here."
        case _:
            return "Decided here, but the ERP did not take the decision. Operations has been alerted with the fix."


def card_view(
    request: RequestState,
    stages: list[StageState],
    votes: list[Vote],
    entries: list[Entry],
    name_of: NameOf,
    notice: str | None = None,
) -> CardView:
    stage = request.plan.stages[min(request.stage, len(request.plan.stages) - 1)]
    if notice is None and request.status is RequestStatus.OPEN:
        notice = drift_notice(request, entries)
    return CardView(
        packet=request.packet,
        stage=request.stage,
        stage_count=len(request.plan.stages),
        role=stage.role,
        status=request.status,
        headline=headline(request, stages, votes, entries, name_of),
        history=history(entries, name_of)[-8:],
        notice=notice,
        actionable=request.status is RequestStatus.OPEN,
    )


def drift_notice(request: RequestState, entries: list[Entry]) -> str | None:
    """Why this card was refreshed, while the refreshed version is the live one."""
    for entry in reversed(entries):
        if entry.event == Event.DRIFT_DETECTED and entry.body.get("to_version") == request.version:
            return (
                f"Refreshed from {request.ref.source.capitalize()}: {'; '.join(entry.body['changes'])}. "
                "Decisions made on the earlier version were not counted; please decide again."
            )
    return None
