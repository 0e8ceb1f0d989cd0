"""Stall alerts in the ops channel — one per stall, updated in place as it ages, resolved when it moves — and the daily digest."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from handoff.state import outbox
from handoff.state.schedule_store import Alert, ScheduleStore, StageMarks

from .calendar import BusinessCalendar
from .context import Core
from .effects import BatchEffects, Effects
from .errors import ChatError, ChatRateLimited
from .events import Event
from .models import Delivery, RequestState, RequestStatus
from .ports import ChatChannel
from .route import members, ops_target, targets_for_stage
from .view import clock_time, escalation_note, inert, role_label

log = logging.getLogger(__name__)

# A write-back still failing after this many tries is worth a human's look, though Handoff keeps retrying.
STUCK_WRITE_ATTEMPTS = 3
ALERT_RETRY = timedelta(minutes=1)
# A stage with no row, as for a request stored without its stages: no start, no escalation, no card.
UNMARKED = StageMarks(None, 0, frozenset())



def calendar_of(core: Core, request: RequestState) -> BusinessCalendar:
    """The calendar an SLA is counted in: the request's region's, else the default."""
    return core.routing.calendar_for(request.packet.record.region)


@dataclass
class Held:
    """Writes a batch of due stages gathers and makes at its end in a few statements, inside the same transaction."""

    effects: BatchEffects
    log: list[tuple[str | None, str, str, dict]] = field(default_factory=list)
    alerts: list[tuple[str, str | None, str]] = field(default_factory=list)

    def flush(self, due: ScheduleStore, now: datetime) -> None:
        self.effects.flush()
        due.raise_alerts(self.alerts, now)
        due.store.log_many(self.log)


def stage_subject(request_id: str, stage: int) -> str:
    return f"stage:{request_id}:{stage}"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // (24 * 60)} days"


class Stalls:
    def __init__(self, core: Core, due: ScheduleStore, channels: Mapping[str, ChatChannel]) -> None:
        self.core = core
        self.due = due
        self.channels = channels

    # ---- stalled stages

    def stalled(self, held: Held, request: RequestState, now: datetime, alerted: bool, marks: StageMarks) -> bool:
        """Record the stall of the request's current stage once: the event, the what-changed reply, the alert.

        `alerted` says whether the stage ever had an alert; the caller reads that, and `marks`, for a whole batch at once.
        """
        if alerted:
            return False
        held.alerts.append((stage_subject(request.id, request.stage), request.id, self.stage_text(request, now, marks)))
        held.log.append((request.id, Event.REQUEST_STALLED, "handoff", {
            "stage": request.stage, "role": request.plan.stages[request.stage].role,
            "sla_hours": request.plan.stages[request.stage].sla_hours,
        }))
        held.effects.what_changed(request.id)
        log.info("schedule.stalled", extra={"request_id": request.id, "stage": request.stage})
        return True

    def stage_text(self, request: RequestState, now: datetime, marks: StageMarks) -> str:
        """What is stuck, where, for how long, who holds it, and the next action."""
        core, stage = self.core, request.plan.stages[request.stage]
        record, started = request.packet.record, marks.started_at or request.created_at
        reference = inert(record.reference)
        waited = calendar_of(core, request).hours_between(started, now)
        holders = [p.name for p in members(core.routing, stage.role) if p.key != request.requester]
        where = f"#{stage.channel}" if stage.delivery is Delivery.CHANNEL else "their DMs"
        lines = [
            f"Stalled: {reference} ({inert(record.vendor)}, {record.amount:,.2f} {inert(record.currency)}) has waited "
            f"{waited:.0f} business hours (SLA {stage.sla_hours:g} h) since {clock_time(started)}, "
            f"{_span(now - started)} in all.",
            f"Where: stage {request.stage + 1} of {len(request.plan.stages)}, {role_label(stage.role)} in {where}; "
            f"held by {', '.join(holders) or 'nobody'}.",
        ]
        if escalated := escalation_note(stage.escalate_to, marks.escalation_level):
            lines.append(escalated)
        own = targets_for_stage(core.routing, request.plan, stage, {request.requester or ""})
        if not any((t.platform, t.address) in marks.posted for t in own):
            lines.append(
                f"Next: no {role_label(stage.role)} has the card — routing failed or its post was set aside. Fix role "
                f"'{stage.role}' in the routing config (`handoff routes check`), or retry the post (`handoff outbox list`)."
            )
        else:
            lines.append(f"Next: approve, ping or reassign — `/handoff status {reference}`.")
        return "\n".join(lines)

    # ---- the scan: age open alerts, resolve what moved, open the ones for failed deliveries

    def scan(self, now: datetime) -> int:
        changed = 0
        with self.core.store.transaction():
            failures = {subject: (request_id, text) for subject, request_id, text in self._failures()}
            alerts = self.due.open_alerts()
            texts = {subject: text for subject, (_, text) in failures.items()}
            texts |= self._still_stuck([alert.subject for alert in alerts if alert.subject.startswith("stage:")], now)
            rewritten = []  # open alerts whose text changed, written in one executemany
            for alert in alerts:
                changed += self._refresh(alert, texts.get(alert.subject), now, rewritten)
            self.due.raise_alerts(rewritten, now)
            opened = {alert.subject for alert in alerts}  # those failures _refresh just brought up to date
            for subject, (request_id, text) in failures.items():
                if subject not in opened:
                    changed += self.due.raise_alert(subject, request_id, text, now)
        return changed

    def _refresh(self, alert: Alert, text: str | None, now: datetime, rewritten: list[tuple[str, str | None, str]]) -> int:
        if text is None:
            kind, _, key = alert.subject.partition(":")
            self.due.resolve_alert(alert.subject, f"Resolved after {_span(now - alert.opened_at)}: {self._moved(kind, key)}", now)
            return 1
        if text == alert.text:
            return 0  # as raise_alert would find: every open alert is scanned every round, so no statement for no change
        rewritten.append((alert.subject, alert.request_id, text))  # open, with another text: raise_alert's update applies
        return 1

    def _still_stuck(self, subjects: list[str], now: datetime) -> dict[str, str | None]:
        """Each stall alert's current text, or None once its request has moved; reads all of them in a few statements."""
        keys = {subject: subject.partition(":")[2].rpartition(":") for subject in subjects}
        ids = [request_id for request_id, _, _ in keys.values()]
        requests, marks = self.core.store.get_requests(ids), self.due.stage_marks(ids)
        texts: dict[str, str | None] = {}
        for subject, (request_id, _, stage) in keys.items():
            request = requests.get(request_id)
            open_here = request is not None and request.status is RequestStatus.OPEN and request.stage == int(stage)
            texts[subject] = self.stage_text(request, now, marks.get((request_id, int(stage)), UNMARKED)) if open_here else None
        return texts

    def _moved(self, kind: str, key: str) -> str:
        if kind == "stage":
            request = self.core.store.get_request(key.rpartition(":")[0])
            if request is None:
                return "the request is gone."
            where = (f"now at stage {request.stage + 1}, {role_label(request.plan.stages[request.stage].role)}"
                     if request.status is RequestStatus.OPEN else request.status.value.replace("_", " "))
            return f"{inert(request.reference)} moved on ({where})."
        return {"dead": f"dead letter #{key} was retried or dropped.", "failed": "the request left the failed state.",
                "write": f"the write-back (outbox #{key}) went through or was set aside."}[kind]

    def _failures(self) -> list[tuple[str, str | None, str]]:
        """(subject, request id, text) for each dead letter, failed write-back and write-back that keeps failing."""
        store = self.core.store
        found = []
        for item in outbox.items(store.conn, "dead"):
            found.append((f"dead:{item.id}", item.request_id,
                          f"Dead letter #{item.id}: a {item.kind.replace('_', ' ')} for {self._reference(item.request_id)} "
                          f"failed and was set aside: {inert(item.last_error)}.\nNext: fix the cause, then "
                          f"`handoff outbox retry {item.id}` (or `handoff outbox drop {item.id}` with a reason)."))
        for request in store.requests_by_status(RequestStatus.FAILED):
            error = next((e.body.get("error") for e in reversed(store.narrative(request.id)) if e.event == Event.ERP_WRITE_FAILED), None)
            erp, reference = request.ref.source.capitalize(), inert(request.reference)
            found.append((f"failed:{request.id}", request.id,
                          f"Write-back failed: {reference} was decided here but {erp} refused it: {inert(error)}.\n"
                          f"Next: fix the record in {erp} and decide it there, or `/handoff status {reference}` for the story."))
        for item_id, request_id, attempts, error in self.due.stuck_writes(STUCK_WRITE_ATTEMPTS):
            found.append((f"write:{item_id}", request_id,
                          f"Write-back keeps failing: {self._reference(request_id)} has failed {attempts} times "
                          f"(last: {inert(error)}); Handoff keeps retrying.\nNext: check that the ERP is reachable and its "
                          f"credentials work; `handoff outbox list` shows item #{item_id}."))
        return found

    def _reference(self, request_id: str | None) -> str:
        request = self.core.store.get_request(request_id) if request_id else None
        return inert(request.reference) if request else "an alert"

    # ---- delivery of alerts: posted once, then edited in place

    async def sync(self, now: datetime) -> int:
        sent, alerts = 0, self.due.unsent_alerts(now, 50)
        # An alert goes to the ops channel on its request's platform: all of those read at once, not one per alert.
        requests = self.core.store.get_requests([alert.request_id for alert in alerts if alert.request_id])
        for alert in alerts:
            request = requests.get(alert.request_id or "")
            target = ops_target(self.core.routing, request.platform if request else self.core.routing.defaults.platform)
            channel = self.channels.get(alert.platform or target.platform)
            if channel is None:
                log.error("alert.no_channel", extra={"alert": alert.id, "platform": target.platform})
                self.due.retry_alert(alert, now + ALERT_RETRY)
                continue
            try:
                if alert.message_id and alert.conversation:
                    await channel.update_alert(alert.conversation, alert.message_id, alert.text)
                    conversation, message_id = alert.conversation, alert.message_id
                else:
                    conversation, message_id = await channel.post_alert(target, alert.text)
            except ChatRateLimited as error:
                self.due.retry_alert(alert, now + timedelta(seconds=error.retry_after))
                continue
            except ChatError as error:
                log.warning("alert.retry", extra={"alert": alert.id, "error": str(error), "permanent": error.permanent})
                if error.permanent and alert.message_id:
                    self.due.forget_message(alert)  # deleted by someone, say: post it afresh next time
                self.due.retry_alert(alert, now + ALERT_RETRY)
                continue
            # One statement, atomic on its own: a transaction around it would add two round trips per alert on PostgreSQL.
            self.due.alert_sent(alert, alert.platform or target.platform, conversation, message_id)
            sent += 1
        return sent

    # ---- the daily digest

    def digest(self, now: datetime) -> int:
        """Once per working day of the default calendar: open requests by business unit and exception type."""
        calendar = self.core.routing.calendar_for(None)
        if not calendar.is_working(now) or self.due.digest_sent(calendar.local_date(now)):
            return 0
        rows = self.due.aging()
        if not rows:
            return 0
        with self.core.store.transaction() as conn:
            if not self.due.digest_once(calendar.local_date(now), now):
                return 0
            total = sum(count for _, _, count, _ in rows)
            lines = [f"Daily exception aging: {total} open request(s)."]
            lines += [f"• {inert(unit or 'no business unit')} · {inert(kind or 'no exception')}: {count} open, oldest waiting "
                      f"{_span(now - oldest)}" for unit, kind, count, oldest in rows]
            lines.append("Ask `/handoff status <reference>` for any of them.")
            Effects(conn, now).notify(ops_target(self.core.routing, self.core.routing.defaults.platform), "\n".join(lines))
        return 1
