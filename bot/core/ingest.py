"""Ingest: turn stored ERP events into requests — enrich, route, queue the cards. Webhooks only hint; we re-read."""

from __future__ import annotations

import logging
from datetime import timedelta

from handoff.bot.faults import crash_point

from .act import close_in_erp, post_stage_cards, refresh_packet
from .context import Core
from .lanes import in_lanes
from .effects import Effects
from .enrich import build_packet, enrich, read_record
from .errors import ErpError, HandoffError, RecordNotFound, StoreUnavailable
from .events import Event
from .models import ErpRecord, RequestState, RoutePlan, SourceEvent
from .outage import Outage
from .retry import Backoff
from .route import NoRouteError, RouteFacts, ops_target, person_for_erp, plan_route, platform_of
from .view import inert

log = logging.getLogger(__name__)

# An event that keeps failing is retried at this pace; each failure is also told to operations once.
RETRY_EVERY = timedelta(minutes=1)
# Requests opened from a webhook hint while the ERP was down are re-read at this pace until it answers.
REREAD_EVERY = timedelta(seconds=30)


# Events for different records are enriched side by side, this many at a time.
LANES = 16


class Ingestor:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._next_reread = core.clock.now()

    async def drain(self, limit: int = 50) -> int:
        """Process every due inbox event, then re-read incomplete requests when due; returns how many were handled."""
        items = self.core.store.due_events(self.core.clock.now(), limit)
        await in_lanes(items, lambda item: item.event.ref.key, lambda item: self._handle(item.id, item.event, item.attempts), LANES)
        return len(items) + await self._reread_incomplete()

    async def _reread_incomplete(self) -> int:
        """Enrichment resumes by itself: once the ERP answers, each incomplete card is rebuilt from the live record."""
        core, now = self.core, self.core.clock.now()
        if now < self._next_reread:
            return 0
        self._next_reread = now + REREAD_EVERY
        refreshed, still_down = 0, set()
        for request in core.store.incomplete_requests():
            if request.ref.source in still_down:
                continue
            try:
                live = await read_record(core.connector(request.ref), request.ref, Backoff(attempts=1), core.sleep)
            except ErpError as error:
                # One failed read per source and round: a long outage costs one call every REREAD_EVERY, not one per card.
                log.info("enrich.still_failing", extra={"request_id": request.id, "error": str(error)})
                still_down.add(request.ref.source)
                continue
            ended = core.outages.up(request.ref.source)
            if ended is not None:
                self._said_back(ended)
            if live.awaiting_approval:
                refresh_packet(core, request, live, seen_by="erp")
            else:
                with core.store.transaction() as conn:
                    close_in_erp(core, conn, request, live)
            refreshed += 1
        if refreshed:
            core.wake()
        return refreshed

    def _said_back(self, ended: Outage) -> None:
        """Tell operations once that an outage is over."""
        self._alert(f"{ended.source.capitalize()} answers again (unreachable since {ended.since:%H:%M} UTC); "
                    "incomplete cards are being re-read.", key=f"erp-back:{ended.key}")

    async def _handle(self, inbox_id: int, event: SourceEvent, attempts: int) -> None:
        store = self.core.store
        try:
            note, request_id = await self.process(event)
        except RecordNotFound as error:
            note, request_id = f"record not found: {error}", None
        except StoreUnavailable:
            # Not this event's fault: it stays leased and comes back whole once the database does, with no alert.
            raise
        except HandoffError as error:
            # Unexpected but ours (a config gap, say): keep the event, retry later, and tell a human once.
            log.error("ingest.failed", extra={"ref": event.ref.key, "error": str(error)})
            store.defer_event(inbox_id, self.core.clock.now() + RETRY_EVERY, str(error))
            if attempts == 0:
                self._alert(f"Couldn't process the {event.ref.source} event for {inert(event.ref.key)}: {inert(error)}. "
                            "Handoff keeps retrying every minute.")
            return
        store.settle_event(inbox_id, note, request_id)
        log.info("ingest.settled", extra={"ref": event.ref.key, "note": note, "request_id": request_id})

    async def process(self, event: SourceEvent) -> tuple[str, str | None]:
        core = self.core
        existing = core.store.open_request_for(event.ref)
        was_down = core.outages.current(event.ref.source)
        record, incomplete = await enrich(core.connector(event.ref), event, core.enrich_backoff, core.sleep, core.outages, core.clock.now())
        outage = core.outages.current(event.ref.source)
        if outage is not None:
            self._alert(f"{outage.describe()}. Webhooks are still accepted; cards go out marked incomplete and are "
                        "re-read when it answers. Check the ERP and the network between it and Handoff.", key=f"erp-down:{outage.key}")
        elif was_down is not None:
            self._said_back(was_down)
        if existing is not None:
            return self._update_existing(existing, record, incomplete), existing.id
        if incomplete is None and not record.awaiting_approval:
            return f"not awaiting approval (state {record.state})", None
        return self._open_request(event, record, incomplete)

    def _update_existing(self, request: RequestState, record: ErpRecord, incomplete: str | None) -> str:
        if incomplete is not None:
            return "hint for an open request; ERP unreadable, kept as is"
        if not record.awaiting_approval:
            with self.core.store.transaction() as conn:
                close_in_erp(self.core, conn, request, record)
            self.core.wake()
            return "closed: decided in the ERP"
        if record.fingerprint() == request.packet.fingerprint:
            return "duplicate of an open request"
        refresh_packet(self.core, request, record, seen_by="erp")
        self.core.wake()
        return "refreshed: the record changed"

    def _open_request(self, event: SourceEvent, record: ErpRecord, incomplete: str | None) -> tuple[str, str | None]:
        core, now = self.core, self.core.clock.now()
        facts = RouteFacts.from_record(record)
        request_id = core.store.new_request_id()
        try:
            plan = plan_route(core.routing, facts)
        except NoRouteError as error:
            with core.store.transaction() as conn:
                core.store.log(None, Event.ROUTING_FAILED, "handoff", {"ref": event.ref.key, "reason": str(error)})
                Effects(conn, now).notify(ops_target(core.routing, core.routing.defaults.platform),
                                          f"No rule routes {inert(record.reference)}: {error}")
            core.wake()
            return "no route", None
        requester = person_for_erp(core.routing, record.requester)
        packet = build_packet(request_id, 1, record, plan.policy_notes, incomplete)
        with core.store.transaction() as conn:
            request = core.store.create_request(packet, plan, platform_of(core.routing, plan), requester.key if requester else None, now)
            self._log_opening(request, event, plan)
            post_stage_cards(core, Effects(conn, now), request, plan.stages[0])
        crash_point("after_route")
        core.wake()
        return "request opened", request_id

    def _log_opening(self, request: RequestState, event: SourceEvent, plan: RoutePlan) -> None:
        store, record = self.core.store, request.packet.record
        store.log(request.id, Event.REQUEST_RECEIVED, "erp", {
            # Reconciliation marks what it found itself, so the narrative doesn't claim a webhook that never came.
            "trigger": f"{event.ref.source.capitalize()} {'poll' if event.hint.get('trigger') == 'poll' else 'webhook'}",
            "reference": record.reference,
            "ref": event.ref.key,
            "dedup_key": event.dedup_key,
            "received_at": event.received_at.isoformat(),
        })
        store.log(request.id, Event.PACKET_BUILT, "handoff", {
            "version": request.packet.version,
            "packet": request.packet.model_dump(mode="json"),
        })
        store.log(request.id, Event.PACKET_ROUTED, "handoff", {
            "rule": plan.rule, "level": plan.level, "reasons": list(plan.reasons),
            "roles": [s.role for s in plan.stages], "requester": request.requester,
        })

    def _alert(self, text: str, key: str | None = None) -> None:
        """A notice to operations; with a `key`, once per key however often it is raised."""
        core = self.core
        with core.store.transaction() as conn:
            Effects(conn, core.clock.now()).notify(ops_target(core.routing, core.routing.defaults.platform), text, key=key)
        core.wake()
