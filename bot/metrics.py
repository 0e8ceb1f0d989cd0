"""/metrics in Prometheus text format: counters derived from the store at scrape time, plus measured ERP calls."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from handoff.bot.console.facts import open_requests, stage_timings
from handoff.bot.core.context import Core
from handoff.bot.core.errors import HandoffError
from handoff.bot.core.models import Decision, ErpRecord, RecordRef
from handoff.bot.core.ports import ErpConnector

# Text exposition format 0.0.4: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
APPROVAL_BUCKETS = (300.0, 900.0, 3600.0, 4 * 3600.0, 8 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0)
ERP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: Labels = ()) -> str:
    pairs = labels + extra
    if not pairs:
        return ""
    # Label values escape backslash, double quote and newline, as the format requires.
    text = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), chr(92) + "n")}"' for k, v in pairs)
    return "{" + text + "}"


def _number(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: Labels) -> Iterable[str]:
        counts = self.counts or [0] * len(self.buckets)
        for bound, n in zip(self.buckets, counts):
            yield f"{name}_bucket{_labels(labels, (('le', _number(bound)),))} {n}"
        yield f"{name}_bucket{_labels(labels, (('le', '+Inf'),))} {self.count}"
        yield f"{name}_sum{_labels(labels)} {_number(self.total)}"
        yield f"{name}_count{_labels(labels)} {self.count}"


class Exposition:
    """Builds one scrape: HELP and TYPE once per family, then its samples."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Mapping[Labels, float]) -> None:
        self.out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.out += [f"{name}{_labels(labels)} {_number(value)}" for labels, value in sorted(samples.items())]

    def histograms(self, name: str, help_text: str, series: Mapping[Labels, Histogram]) -> None:
        self.out += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for labels, histogram in sorted(series.items()):
            self.out += list(histogram.lines(name, labels))

    def text(self) -> str:
        return "\n".join(self.out) + "\n"


@dataclass
class ErpCalls:
    """ERP call latency and failures, per source and operation, since this process started."""

    latency: dict[Labels, Histogram] = field(default_factory=dict)
    errors: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))

    def record(self, source: str, operation: str, seconds: float, error: str | None) -> None:
        labels = (("source", source), ("operation", operation))
        self.latency.setdefault(labels, Histogram(ERP_BUCKETS)).observe(seconds)
        if error:
            self.errors[labels + (("error", error),)] += 1


class MeasuredConnector:
    """An ErpConnector that times each ERP call and counts failures by error type, then behaves exactly as the one it wraps."""

    def __init__(self, inner: ErpConnector, calls: ErpCalls, timer: Callable[[], float] = time.perf_counter) -> None:
        self.inner, self.calls, self.timer = inner, calls, timer
        self.source = inner.source

    async def _measure(self, operation: str, call):
        started, error = self.timer(), None
        try:
            return await call
        except HandoffError as failure:
            error = type(failure).__name__
            raise
        finally:
            self.calls.record(self.source, operation, self.timer() - started, error)

    async def fetch_record(self, ref: RecordRef) -> ErpRecord:
        return await self._measure("fetch_record", self.inner.fetch_record(ref))

    async def unchanged(self, record: ErpRecord) -> bool | None:
        return await self._measure("unchanged", self.inner.unchanged(record))

    async def write_decision(self, record: ErpRecord, decision: Decision) -> ErpRecord:
        return await self._measure("write_decision", self.inner.write_decision(record, decision))

    async def post_note(self, ref: RecordRef, text: str) -> None:
        return await self._measure("post_note", self.inner.post_note(ref, text))

    def __getattr__(self, name: str):
        # No I/O in the rest of the port (record_url, record_from_hint): pass through unmeasured.
        return getattr(self.inner, name)


ERP_CALLS = web.AppKey("erp_calls", ErpCalls)


def measure(connectors: Mapping[str, ErpConnector], calls: ErpCalls) -> dict[str, ErpConnector]:
    return {name: MeasuredConnector(connector, calls) for name, connector in connectors.items()}


def _grouped(conn, sql: str, label: str) -> dict[Labels, float]:
    return {((label, str(key)),): n for key, n in conn.execute(sql)}


def exposition(core: Core, calls: ErpCalls) -> str:
    """Everything /metrics shows; store-derived numbers survive restarts because the store does."""
    conn, now = core.store.conn, core.clock.now()
    out = Exposition()
    out.family("handoff_events_received_total", "counter", "ERP webhooks accepted into the inbox, by source.",
               _grouped(conn, "SELECT source, COUNT(*) FROM inbox WHERE kind = 'event' GROUP BY source", "source"))
    out.family("handoff_cards_posted_total", "counter", "Approval cards posted, by chat platform.",
               _grouped(conn, "SELECT platform, COUNT(*) FROM cards GROUP BY platform", "platform"))
    decisions: dict[Labels, float] = defaultdict(float)
    for event, body in conn.execute("SELECT event, body FROM decision_log WHERE event IN ('DecisionRecorded', 'InfoRequested', 'DecisionRefused')"):
        outcome = {"InfoRequested": "ask_info", "DecisionRefused": "refused"}.get(event) or json.loads(body).get("verb", "unknown")
        decisions[(("outcome", outcome),)] += 1
    out.family("handoff_decisions_total", "counter", "Clicks on cards, by outcome: approve, reject, ask_info, refused.", decisions)
    durations: dict[Labels, Histogram] = {}
    for t in stage_timings(core.store):
        if t.decided_at is not None:
            durations.setdefault((("role", t.role), ("stage", str(t.stage + 1))), Histogram(APPROVAL_BUCKETS)).observe(
                (t.decided_at - t.started_at).total_seconds())
    out.histograms("handoff_approval_duration_seconds", "Time from a stage's card to its decision, by role and stage.", durations)
    waiting = open_requests(core.store, core.routing, now)
    out.family("handoff_requests_open", "gauge", "Requests waiting for a decision.", {(): len(waiting)})
    out.family("handoff_requests_stalled", "gauge", "Open requests past their stage SLA or marked stalled.", {(): sum(1 for w in waiting if w.stall)})
    out.family("handoff_outbox_items", "gauge", "Outbox items by status (pending, done, dead, dropped).",
               _grouped(conn, "SELECT status, COUNT(*) FROM outbox GROUP BY status", "status"))
    dead = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'dead'").fetchone()[0]
    out.family("handoff_outbox_dead_letters", "gauge", "Side effects that gave up and wait for a human.", {(): dead})
    out.histograms("handoff_erp_call_duration_seconds", "ERP call latency since start, by source and operation.", calls.latency)
    out.family("handoff_erp_call_errors_total", "counter", "Failed ERP calls since start, by source, operation and error.", calls.errors)
    return out.text()


def register_metrics(app: web.Application, core_key: web.AppKey[Core]) -> None:
    """GET /metrics; the app wraps its connectors with `measure(..., app[ERP_CALLS])` so ERP calls are counted."""
    app[ERP_CALLS] = ErpCalls()

    async def metrics(request: web.Request) -> web.Response:
        body = exposition(request.app[core_key], request.app[ERP_CALLS])
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", metrics)
