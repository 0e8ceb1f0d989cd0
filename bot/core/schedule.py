"""The scheduler: reminders at SLA points, escalation up a chain, one step per SLA passed, stall alerts and the daily digest, from stored due times."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from handoff.state.schedule_store import DueStage, Reminder, ScheduleStore, StageMarks

from .context import Core
from .effects import BatchEffects
from .events import Event
from .models import Delivery, RequestState, RequestStatus, StagePlan, Target
from .route import members, targets_for_stage
from .ports import ChatChannel
from .stalls import UNMARKED, Held, Stalls, calendar_of, stage_subject
from .view import inert, role_label

log = logging.getLogger(__name__)


class Scheduler:
    """Run by the worker on every round; everything it knows is in the database, so a restart loses nothing."""

    def __init__(self, core: Core, channels: Mapping[str, ChatChannel], batch: int = 200) -> None:
        self.core = core
        self.due = ScheduleStore(core.store)
        self.stalls = Stalls(core, self.due, channels)
        self.batch = batch

    async def tick(self) -> int:
        """Plan new stages, fire due steps, refresh alerts and the digest; returns how many things happened."""
        now = self.core.clock.now()
        done = self._plan(now) + self._fire(now) + self.stalls.scan(now) + self.stalls.digest(now)
        return done + await self.stalls.sync(now)

    def fractions(self) -> list[float]:
        return sorted({*self.core.routing.defaults.reminders, 1.0})

    def fraction(self, step: int) -> float:
        """The SLA fraction of a step; past the configured points, one step at each whole SLA, for as long as it waits."""
        points = self.fractions()
        # Whole multiples, not last point + n: each one is where the escalation chain takes its next step.
        return points[step] if step < len(points) else math.floor(points[-1]) + (step - len(points) + 1)

    def due_at(self, request: RequestState, stage: StagePlan, started_at: datetime, step: int) -> datetime:
        return calendar_of(self.core, request).add(started_at, self.fraction(step) * stage.sla_hours)

    def _plan(self, now: datetime) -> int:
        planned = self.due.unplanned(self.batch)
        if not planned:
            return 0
        with self.core.store.transaction():
            requests, schedule = self.core.store.get_requests([row.request_id for row in planned]), []
            for row in planned:
                request = requests.get(row.request_id)
                if request is None or request.status is not RequestStatus.OPEN:
                    schedule.append((row.request_id, row.stage, None, 0))
                    continue
                schedule.append((row.request_id, row.stage, self.due_at(request, request.plan.stages[row.stage], row.started_at, 0), 0))
            self.due.set_due_many(schedule)
        return 0  # planning alone sends nothing, so it must not make the worker spin

    def _fire(self, now: datetime) -> int:
        due = self.due.due(now, self.batch)
        if not due:
            return 0
        # One transaction for the batch: each commit is a synced round trip on PostgreSQL that holds the event loop, and
        # a tick spent most of its time committing due stages one by one (handoff bench's stall scan).
        try:
            with self.core.store.transaction() as conn:
                return self._fire_batch(Held(BatchEffects(conn, now)), due, now)
        except Exception:
            log.warning("schedule.batch_failed", extra={"due": len(due)}, exc_info=True)
        # One stage that fails must not hold back the others: each in a transaction of its own, then the failure surfaces.
        fired, failure = 0, None
        for row in due:
            try:
                with self.core.store.transaction() as conn:
                    fired += self._fire_batch(Held(BatchEffects(conn, now)), [row], now)
            except Exception as error:
                failure = failure or error
        if failure is not None:
            raise failure
        return fired

    def _fire_batch(self, held: Held, rows: list[DueStage], now: datetime) -> int:
        """Take each due stage one step; reads and writes go a batch at a time, each a round trip on PostgreSQL.

        All of it is one transaction, so a crash mid-batch leaves every stage's due time, reminder claim and escalation
        level as they were, and the next tick takes the same steps, once.
        """
        requests = self.core.store.get_requests([row.request_id for row in rows])
        schedule: list[tuple[str, int, datetime | None, int]] = []
        steps: list[tuple[RequestState, StagePlan, DueStage]] = []
        for row in rows:
            request = requests.get(row.request_id)
            if request is None or request.status is not RequestStatus.OPEN or request.stage != row.stage:
                schedule.append((row.request_id, row.stage, None, row.step))  # it moved without the stage row knowing
                continue
            stage = request.plan.stages[row.stage]
            while self.due_at(request, stage, row.started_at, row.step + 1) <= now:
                row = replace(row, step=row.step + 1)  # after downtime only the latest point is worth a reminder, not a burst
            steps.append((request, stage, row))
        late = [request.id for request, _, row in steps if self.fraction(row.step) >= 1.0]
        marks = self.due.stage_marks(late)
        alerted = set(self.due.alerts([stage_subject(request_id, requests[request_id].stage) for request_id in late]))
        voters = self.due.voters([request.id for request, stage, _ in steps if stage.delivery is not Delivery.CHANNEL])
        done, sends, escalations = 0, [], []
        for request, stage, row in steps:
            if self.fraction(row.step) >= 1.0:
                mark = marks.get((request.id, stage.index), UNMARKED)
                done += self.stalls.stalled(held, request, now, stage_subject(request.id, stage.index) in alerted, mark)
                escalations.append((request, stage, math.floor(self.fraction(row.step)), mark))
            wanted, later = self._remind(request, stage, row, voters.get((request.id, stage.index), set()), now)
            sends += wanted
            if later is not None:
                schedule.append((request.id, stage.index, later, row.step))  # someone's night: same step, their morning
            else:
                schedule.append((request.id, stage.index, self.due_at(request, stage, row.started_at, row.step + 1), row.step + 1))
        done += self._escalate(held, escalations, now)
        sent = self._send(held, sends, now)
        self.due.set_due_many(schedule)
        held.flush(self.due, now)
        reminded = Counter((reminder.request_id, reminder.stage) for reminder in sent)
        for request, stage, row in steps:
            log.info("schedule.step", extra={"request_id": request.id, "stage": stage.index, "step": row.step,
                                             "fraction": self.fraction(row.step), "reminded": reminded[request.id, stage.index]})
        return done + len(sent)

    def _send(self, held: Held, sends: list[tuple[Reminder, Target | None, str]], now: datetime) -> set[Reminder]:
        """Queue each reminder the first time it is claimed (this tick or ever, across replicas); returns those queued."""
        claimed, sent = self.due.remind_each_once([reminder for reminder, _, _ in sends], now), set()
        for reminder, target, text in sends:
            if reminder not in claimed or reminder in sent:
                continue
            sent.add(reminder)
            if target is None:
                held.effects.thread(reminder.request_id, text)
            else:
                key = f"remind:{reminder.request_id}:{reminder.stage}:{reminder.step}:{reminder.recipient}"
                held.effects.notify(target, text, reminder.request_id, key=key)
        return sent

    def _recipients(self, request: RequestState, stage: StagePlan, voted: set[str]) -> list[tuple[str, str | None, Target | None]]:
        """(who, time zone, DM target) per reminder: each undecided approver's DM, or the channel card's thread."""
        if stage.delivery is Delivery.CHANNEL:
            return [(f"#{stage.channel}", None, None)]
        return [
            (target.person or target.address, getattr(self.core.routing.people.get(target.person or ""), "time_zone", None), target)
            for target in targets_for_stage(self.core.routing, request.plan, stage, {request.requester or ""} | voted)
        ]

    def _remind(self, request: RequestState, stage: StagePlan, row: DueStage, voted: set[str],
                now: datetime) -> tuple[list[tuple[Reminder, Target | None, str]], datetime | None]:
        """The reminders this step wants sent now (each still to be claimed once), and when to come back for the rest."""
        fraction = self.fraction(row.step)
        if fraction not in self.core.routing.defaults.reminders and row.step < len(self.fractions()):
            return [], None
        calendar, wanted, later = calendar_of(self.core, request), [], None
        text = self.reminder_text(request, stage, row.started_at, now)
        for who, zone, target in self._recipients(request, stage, voted):
            local = calendar.in_zone(zone)
            if not local.is_working(now):
                wake = local.next_working(now)
                later = wake if later is None else min(later, wake)
                continue
            wanted.append((Reminder(request.id, stage.index, row.step, who), target, text))
        return wanted, later

    def reminder_text(self, request: RequestState, stage: StagePlan, started_at: datetime, now: datetime) -> str:
        record = request.packet.record
        waited = calendar_of(self.core, request).hours_between(started_at, now)
        return (
            f"Reminder: {inert(record.reference)} ({inert(record.vendor)}, {record.amount:,.2f} {inert(record.currency)}) has waited "
            f"{waited:.0f} business hours for {role_label(stage.role)} (SLA {stage.sla_hours:g} h). "
            "Approve or reject it on its card, or ask for info there."
        )

    def _escalate(self, held: Held, steps: list[tuple[RequestState, StagePlan, int, StageMarks]], now: datetime) -> int:
        """Take each stage up its chain to its level (at most the chain's end), each step recorded once, in order."""
        moves = {(request.id, stage.index): (request, stage, marks.escalation_level, min(level, len(stage.escalate_to)))
                 for request, stage, level, marks in steps if min(level, len(stage.escalate_to)) > marks.escalation_level}
        # A stage another replica took further meanwhile is left out: that replica tells everyone itself.
        made = self.due.mark_escalated([(rid, index, old, new) for (rid, index), (_, _, old, new) in moves.items()], now)
        taken = 0
        for key in made:
            request, stage, old, new = moves[key]
            for step in range(old + 1, new + 1):
                role, previous = stage.escalate_to[step - 1], (stage.role, *stage.escalate_to)[step - 1]
                # The escalation role is told personally, whatever the stage's own delivery.
                escalated = stage.model_copy(update={"role": role, "delivery": Delivery.DM})
                for target in targets_for_stage(self.core.routing, request.plan, escalated, {request.requester or ""}):
                    held.effects.post_card(request.id, stage.index, target)
                held.log.append((request.id, Event.STAGE_ESCALATED, "handoff", {
                    "stage": stage.index, "level": step, "from": previous, "to": role, "sla_hours": stage.sla_hours,
                    "people": [p.key for p in members(self.core.routing, role) if p.key != request.requester],
                }))
                log.info("schedule.escalated", extra={"request_id": request.id, "stage": stage.index, "level": step, "to": role})
                taken += 1
            held.effects.update_cards(request.id)
        return taken
