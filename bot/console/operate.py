"""Operating pages: the outbox with dead letters to retry, and the routing rules with an "explain" form."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from handoff.bot.core.errors import ConfigError
from handoff.bot.core.route import explain
from handoff.bot.core.route_checks import money
from handoff.bot.explain_event import facts_from_body
from handoff.state import outbox

from .context import CONSOLE
from .page import csrf_field, h, table

log = logging.getLogger(__name__)


MAX_ITEM_ID = 2**63 - 1  # SQLite INTEGER and PostgreSQL BIGINT


def _request_link(rid: str | None) -> str:
    return f'<a href="/console/requests/{h(rid)}">{h(rid)}</a>' if rid else "—"


async def outbox_page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    conn = console.core(request).store.conn
    depth = outbox.depth(conn)
    flash = ""
    if request.query.get("retried", "").isdigit():
        flash = f'<p class="flash">Item {h(request.query["retried"])} is queued again; Handoff delivers it on its next round.</p>'
    counts = ", ".join(f"{h(status)}: {n}" for status, n in sorted(depth.items())) or "empty"
    retry = lambda item: (f'<form method="post" action="/console/outbox/{item.id}/retry">{csrf_field(console.auth.csrf)}'
                          f"<button>Retry</button></form>")
    dead = [[h(i.id), h(i.kind), _request_link(i.request_id), h(i.attempts), h(i.last_error or ""), retry(i)]
            for i in outbox.items(conn, "dead")]
    pending = [[h(i.id), h(i.kind), _request_link(i.request_id), h(i.attempts), h(i.next_at), h(i.last_error or "")]
               for i in outbox.items(conn, "pending")]
    body = (f"{flash}<p>Items by status: {counts}.</p><h2>Dead letters</h2>"
            + (table(["#", "Kind", "Request", "Attempts", "Last error", ""], dead, id="dead") if dead else "<p>No dead letters.</p>")
            + "<h2>Pending</h2>"
            + (table(["#", "Kind", "Request", "Attempts", "Next attempt", "Last error"], pending, id="pending") if pending else "<p>Nothing pending.</p>"))
    return console.page(request, "Outbox", body)


async def retry_item(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    core = console.core(request)
    raw = request.match_info["item_id"]
    # isdigit() alone admits "²" (int() refuses it) and 20-digit ids overflow a 64-bit column: both were 500s.
    if not (raw.isascii() and raw.isdigit() and int(raw) <= MAX_ITEM_ID):
        return console.page(request, "No such item", f"<p>{h(raw)} is not an outbox item number.</p>", status=404)
    item_id = int(raw)
    with core.store.transaction() as conn:
        revived = outbox.revive(conn, item_id, core.clock.now())
        status = conn.execute("SELECT status FROM outbox WHERE id = ?", (item_id,)).fetchone()
    if not revived:
        why = "does not exist" if status is None else f"is {status[0]}, not a dead letter"
        return console.page(request, "Nothing to retry", f'<p>Outbox item {item_id} {h(why)}, so there is nothing to retry. '
                            '<a href="/console/outbox">Back to the outbox</a>.</p>', status=404 if status is None else 409)
    log.info("console.outbox_revived", extra={"item_id": item_id})
    core.wake()
    raise web.HTTPSeeOther(f"/console/outbox?retried={item_id}")


def _conditions(rule) -> str:
    parts = [f"{name}: {value}" for name, value in (("source", rule.source), ("model", rule.model)) if value]
    parts += [f"{name}: {', '.join(values)}" for name, values in
              (("exception types", rule.exception_types), ("regions", rule.regions), ("business units", rule.business_units)) if values]
    if rule.amount_at_least is not None:
        parts.append(f"amount ≥ {money(rule.amount_at_least)}")
    if rule.amount_below is not None:
        parts.append(f"amount < {money(rule.amount_below)}")
    return "<br>".join(h(p) for p in parts) or "any request"


def _stages(rule, default_sla: float) -> str:
    return "<br>".join(
        h(f"{i + 1}. {s.role} · {s.mode.value}{f' {s.quorum}' if s.quorum else ''} · {s.deliver.value}"
          f"{f' #{s.channel}' if s.channel else ''} · SLA {s.sla_hours or default_sla:g}h")
        for i, s in enumerate(rule.stages))


SAMPLE = '{"source": "odoo", "model": "purchase.order", "amount": 12500, "exception_type": "price_variance", "region": "EU"}'


async def routing_page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    routing = console.core(request).routing
    pasted, result, status = SAMPLE, "", 200
    if request.method == "POST":
        pasted = str((await request.post()).get("event", ""))
        try:
            lines = explain(routing, facts_from_body(json.loads(pasted), "The pasted JSON"))
            result = '<h3>Explanation</h3><pre id="explanation">' + "\n".join(h(line) for line in lines) + "</pre>"
        except json.JSONDecodeError as error:
            result, status = f'<p class="error">The pasted text is not JSON ({h(error)}). Paste a webhook body or route facts.</p>', 400
        except ConfigError as error:
            result, status = f'<p class="error">{h(error)}</p>', 400
    rules = [[h(r.name), h(r.level), _conditions(r), _stages(r, routing.defaults.sla_hours), h(r.platform or routing.defaults.platform)]
             for r in routing.rules]
    body = (table(["Rule", "Level", "Matches", "Stages", "Platform"], rules, id="rules")
            + '<h2>Explain an event</h2><form method="post" action="/console/routing">' + csrf_field(console.auth.csrf)
            + "<p>Paste an Odoo or Dataverse webhook body, or route facts as JSON.</p>"
            + f'<textarea name="event" rows="8">{h(pasted)}</textarea><p><button>Explain</button></p></form>' + result)
    return console.page(request, "Routing", body, status=status)
