"""The working inbox every chat shows: what waits for a person, which items may be approved together, and doing so."""

from __future__ import annotations

import logging

from . import status
from .context import Core
from .models import Action, ActionResult, ChatIdentity, Outcome, Person, RequestState, Verb
from .ports import Approvals
from .view import inert

log = logging.getLogger(__name__)

COUNTED = {Outcome.RECORDED, Outcome.STAGE_DECIDED, Outcome.REQUEST_DECIDED}
NOTHING_PENDING = "Nothing waits for your decision."
Item = tuple[str, int, int]  # request id, version, stage: what a card button binds to


def pending(core: Core, person: Person, limit: int) -> tuple[str, list[RequestState]]:
    """The inbox's title and its oldest `limit` items; no items: the title says nothing waits."""
    waiting = status.pending_for(core, person)
    if not waiting:
        return NOTHING_PENDING, []
    shown = waiting[:limit]
    more = f" Showing the oldest {len(shown)}." if len(waiting) > len(shown) else ""
    return f"{len(waiting)} waiting for your decision.{more}", shown


def bulk_approvable(core: Core, requests: list[RequestState]) -> list[RequestState]:
    """The requests whose rule lets them be approved together; fewer than two is no bulk at all."""
    rules = {rule.name for rule in core.routing.rules if rule.bulk_approve}
    bulk = [r for r in requests if r.plan.rule in rules]
    return bulk if len(bulk) > 1 else []


def items_of(requests: list[RequestState]) -> list[list]:
    """The [request, version, stage] triples a bulk button carries, JSON-ready."""
    return [[r.id, r.version, r.stage] for r in requests]


def parse_items(items: object) -> list[Item]:
    """The triples from a button's data; [] when they are not what Handoff wrote."""
    valid = isinstance(items, list) and all(
        isinstance(i, list) and len(i) == 3 and isinstance(i[0], str) and all(type(n) is int for n in i[1:]) for i in items
    )
    return [(i[0], i[1], i[2]) for i in items] if valid else []


async def bulk_approve(approvals: Approvals, actor: ChatIdentity, items: list[Item]) -> list[ActionResult]:
    """Approve each item through `Approvals.act`, one by one: each re-read, drift- and SoD-checked, logged on its own."""
    results = []
    for request_id, version, stage in items:
        results.append(await approvals.act(Action(request_id=request_id, version=version, stage=stage, verb=Verb.APPROVE, actor=actor)))
    counted = sum(1 for r in results if r.outcome in COUNTED)
    log.info("bulk_approve.handled", extra={"items": len(items), "approved": counted, "user": actor.user_id})
    return results


def bulk_report(core: Core, items: list[Item], results: list[ActionResult]) -> str:
    """What a bulk approve did, one line per item: "Approved 1 of 2." then ✓ or ✗ with the reason."""
    lines, counted = [], 0
    for (request_id, _, _), result in zip(items, results):
        request = core.store.get_request(request_id)
        reference = inert(request.reference if request else request_id)
        if result.outcome in COUNTED:
            counted += 1
            lines.append(f"✓ {reference}: {result.message}")
        else:
            lines.append(f"✗ {reference} not approved: {result.message}")
    return f"Approved {counted} of {len(items)}.\n" + "\n".join(lines)
