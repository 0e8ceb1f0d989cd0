"""Status answers: where a request stands, who holds it, for how long — only for people allowed to see it."""

from __future__ import annotations

import re
from datetime import datetime

from .context import Core
from .models import Person, RequestState, RequestStatus
from .route import members
from .view import history, role_label

HELP = (
    "Ask me `status <reference>` (for example `status P00042`), a part of a reference, or a vendor name. "
    "I answer with the stage, who holds it, for how long, and the latest events."
)


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
    return any(person.key in {p.key for p in members(core.routing, role)} for role in roles)


def answer(core: Core, person: Person | None, text: str) -> str:
    """The reply to a status question, in plain text."""
    query = re.sub(r"^\s*status\s*", "", text.strip(), flags=re.IGNORECASE).strip()
    if not query or query.lower() in {"help", "?"}:
        return HELP
    if person is None:
        return "Handoff doesn't know your chat account, so it can't tell which requests you may see. Ask an admin to add you to the routing config."
    found = [r for r in core.store.find_requests(query) if may_see(core, person, r)]
    if not found:
        found = [r for r in _by_vendor(core, query) if may_see(core, person, r)]
    if not found:
        return f"No request you can see matches “{query}”. Try the full reference (e.g. `status P00042`) or a vendor name."
    if len(found) > 1:
        picks = "\n".join(f"• {r.reference} — {r.packet.record.vendor}, {r.packet.record.amount:,.2f} {r.packet.record.currency} ({r.status.value})" for r in found[:5])
        return f"Several requests match “{query}”. Which one?\n{picks}"
    return describe(core, found[0])


def _by_vendor(core: Core, query: str) -> list[RequestState]:
    needle = query.lower()
    return [r for r in core.store.requests_by_status(RequestStatus.OPEN) if needle in r.packet.record.vendor.lower()][:5]


def describe(core: Core, request: RequestState) -> str:
    now = core.clock.now()
    record = request.packet.record
    lines = [f"{request.reference} — {record.vendor}, {record.amount:,.2f} {record.currency}"]
    if request.status is RequestStatus.OPEN:
        stage = request.plan.stages[request.stage]
        started = next((s.started_at for s in core.store.stages(request.id) if s.stage == request.stage), request.created_at)
        holders = ", ".join(p.name for p in members(core.routing, stage.role) if p.key != request.requester)
        lines.append(
            f"Stage {request.stage + 1} of {len(request.plan.stages)}: waiting for {role_label(stage.role)} ({holders}) "
            f"for {_age(started or request.created_at, now)}."
        )
    else:
        lines.append(f"Status: {request.status.value.replace('_', ' ')}.")
    recent = history(core.store.narrative(request.id), core.name_of)[-3:]
    lines.extend(f"• {line}" for line in recent)
    if record.url:
        lines.append(f"Record: {record.url}")
    return "\n".join(lines)
