"""The aging board: open requests by business unit × exception type × age bucket, stalled ones first."""

from __future__ import annotations

from collections import defaultdict

from aiohttp import web

from handoff.bot.core.view import role_label

from .context import CONSOLE
from .facts import AGE_BUCKETS, OpenRequest, open_requests
from .page import h, hours, table


def _link(item: OpenRequest) -> str:
    mark = ' <span class="stalled" title="stalled">⚠ stalled</span>' if item.stall else ""
    return f'<a href="/console/requests/{h(item.request.id)}">{h(item.request.reference)}</a>{mark}'


def _stalled(items: list[OpenRequest]) -> str:
    stalled = [i for i in items if i.stall]
    if not stalled:
        return "<p>Nothing is stalled.</p>"
    rows = [
        [_link(i), h(i.business_unit), h(i.exception_type), h(hours(i.age.total_seconds())),
         h(f"{role_label(i.request.plan.stages[i.request.stage].role)} (stage {i.request.stage + 1})"), h(i.stall)]
        for i in stalled
    ]
    return table(["Request", "Business unit", "Exception type", "Age", "Waiting for", "Why stalled"], rows, id="stalled")


def _grid(items: list[OpenRequest]) -> str:
    cells: dict[tuple[str, str], dict[str, list[OpenRequest]]] = defaultdict(lambda: defaultdict(list))
    for item in items:  # already stalled-first, oldest-first
        cells[(item.business_unit, item.exception_type)][item.bucket].append(item)
    rows = []
    for (unit, kind), buckets in sorted(cells.items(), key=lambda kv: (not any(i.stall for b in kv[1].values() for i in b), kv[0])):
        rows.append([h(unit), h(kind)] + ["<br>".join(_link(i) for i in buckets.get(label, [])) for label, _ in AGE_BUCKETS])
    return table(["Business unit", "Exception type", *(label for label, _ in AGE_BUCKETS)], rows, id="aging")


async def aging_board(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    core = console.core(request)
    items = open_requests(core.store, core.routing, core.clock.now())
    stalled = sum(1 for i in items if i.stall)
    body = (f"<p>{len(items)} open request{'s' * (len(items) != 1)}, {stalled} stalled. Age counts from the ERP event; "
            "a request is stalled when its current stage is past its SLA in business hours, or a stall was recorded.</p>"
            f"<h2>Stalled</h2>{_stalled(items)}<h2>By business unit, exception type and age</h2>"
            + (_grid(items) if items else "<p>No open requests.</p>"))
    return console.page(request, "Aging board", body)
