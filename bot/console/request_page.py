"""A request's page: its narrative as a timeline, its current card as approvers see it, its log entries verified."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from handoff.bot.core.context import Core
from handoff.bot.core.events import Event
from handoff.bot.core.models import RequestState
from handoff.bot.core.view import card_view, clock_time, role_label, sentence
from handoff.cards import adaptive, blockkit

from . import card_html
from .context import CONSOLE
from .facts import CheckedEntry, checked_entries
from .page import h, table

log = logging.getLogger(__name__)


def _bookkeeping(event: str, body: dict, name_of) -> str:
    """Words for the events the chat narrative leaves out, because operators want them."""
    match event:
        case Event.PACKET_BUILT:
            return f"Packet version {body.get('version')} built (expand to see it as shown)"
        case Event.CARD_POSTED:
            to = f" to {name_of(body['person'])}" if body.get("person") else ""
            return f"Card for stage {body.get('stage', 0) + 1} posted on {body.get('platform')} ({body.get('kind')}{to}), version {body.get('version')}"
        case Event.DECISION_REFUSED:
            return f"A {body.get('verb', 'decision')} was refused: {body.get('reason')}"
    return event


def _timeline(checked: list[CheckedEntry], core: Core) -> str:
    items = []
    for c in checked:
        e = c.entry
        words = sentence(e, core.name_of) or _bookkeeping(e.event, e.body, core.name_of)
        items.append(
            f'<li><span class="ev">{h(e.event)}</span> · {h(clock_time(e.at))} · {h(core.name_of(e.actor))}<br>{h(words)}'
            f"<details><summary>details</summary><pre><code>{h(json.dumps(e.body, indent=2, sort_keys=True))}</code></pre></details></li>"
        )
    return '<ol class="timeline">' + "".join(items) + "</ol>"


def _card(request: RequestState, core: Core, entries: list) -> str:
    store = core.store
    view = card_view(request, store.stages(request.id), store.votes(request.id), entries, core.name_of)
    try:
        if request.platform == "slack":
            _, blocks = blockkit.render_card(view)
            shown, wire = card_html.blockkit(blocks), {"blocks": blocks}
        else:
            wire = adaptive.render_card(view)
            shown = card_html.adaptive(wire)
    except ValueError as error:  # a card the platform would refuse is itself worth seeing
        log.warning("console.card_unrenderable", extra={"request_id": request.id, "error": str(error)})
        return f'<p class="error">This card cannot be rendered: {h(error)}</p>'
    return (f"{shown}<details><summary>{h(request.platform)} JSON</summary>"
            f"<pre><code>{h(json.dumps(wire, indent=2))}</code></pre></details>")


def _log_table(checked: list[CheckedEntry]) -> str:
    rows = [
        [h(c.entry.seq), h(c.entry.event), h(c.entry.at),
         f'<span class="hash">{h(c.entry.hash)}</span>', f'<span class="hash">{h(c.entry.prev_hash)}</span>',
         '<span class="ok">✓ verified</span>' if c.verified else f'<span class="bad">✗ {h(c.problem)}</span>']
        for c in checked
    ]
    return table(["#", "Event", "At", "Hash", "Previous hash", "Check"], rows, id="log")


async def request_page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    core = console.core(request)
    rid = request.match_info["request_id"]
    state = core.store.get_request(rid)
    if state is None:
        return console.page(request, "Request not found", f"<p>No request has the id {h(rid)}. "
                            'Open it from the <a href="/console/">aging board</a>.</p>', status=404)
    checked = checked_entries(core.store.conn, rid)
    entries = [c.entry for c in checked]
    bad = sum(1 for c in checked if not c.verified)
    stage = state.plan.stages[min(state.stage, len(state.plan.stages) - 1)]
    record = state.packet.record
    summary = table(["Status", "Stage", "Business unit", "Exception type", "Rule", "Opened"], [[
        h(state.status.value), h(f"{role_label(stage.role)} ({state.stage + 1} of {len(state.plan.stages)})"),
        h(record.business_unit or "(none)"), h(record.exception_type or "(none)"), h(state.plan.rule), h(clock_time(state.created_at)),
    ]])
    verdict = ('<p class="ok">Every entry verified: each hash matches its content and follows the entry before it.</p>' if not bad
               else f'<p class="bad">{bad} entr{"y" if bad == 1 else "ies"} failed verification. Run <code>handoff log verify</code> for the whole chain.</p>')
    body = (f"{summary}<h2>Current card</h2>{_card(state, core, entries)}<h2>Narrative</h2>{_timeline(checked, core)}"
            f"<h2>Decision log</h2>{verdict}{_log_table(checked)}")
    return console.page(request, f"{state.reference} · {record.vendor}", body)
