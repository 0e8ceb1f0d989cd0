"""Deliver: carry out queued side effects — card posts and updates, thread replies, alerts, ERP write-backs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from handoff.bot.faults import crash_point
from handoff.state import outbox
from handoff.state.outbox import OutboxItem

from .act import Approvals, close_in_erp, refresh_packet
from .context import Core
from .lanes import in_lanes
from .effects import Effect, Effects
from .errors import ChatError, ChatRateLimited, ErpConflict, ErpError, ErpThrottled, ErpUnavailable, HandoffError
from .events import Event
from .models import CardView, Decision, ErpRecord, PostedCard, RequestState, RequestStatus, Target, Verb
from .pacing import Destination, Pacer, prepaid
from .ports import ChatChannel, CountsRequests, FindsCards
from .retry import Backoff
from .route import ops_target
from .tell import what_changed
from .view import inert

log = logging.getLogger(__name__)


# Side effects of different requests go out side by side, this many at a time; one request's stay in order.
LANES = 16


# A card is never older than its outbox item; the look-up starts this much earlier to cover the clock difference
# between this host and the chat platform.
CLOCK_MARGIN = timedelta(minutes=5)


class Permanent(HandoffError):
    """A delivery that no retry will fix; it goes to dead letters and a human is told."""


class Dispatcher:
    def __init__(
        self,
        core: Core,
        approvals: Approvals,
        channels: Mapping[str, ChatChannel],
        max_attempts: int = 8,
        backoff: Backoff = Backoff(base_delay=1.0, max_delay=300.0),
        lease: timedelta = timedelta(minutes=2),
        pacer: Pacer | None = None,
        # An ERP outage of minutes must not bury write-backs: with the 300 s ceiling this is over an hour of retries.
        erp_attempts: int = 20,
    ) -> None:
        self.core = core
        self.approvals = approvals
        self.channels = channels
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.lease = lease
        self.pacer = pacer or Pacer()
        self.erp_attempts = erp_attempts

    async def drain(self, limit: int = 50) -> int:
        """Deliver every due item whose destination has a free slot; the rest wait for theirs. Returns how many were due."""
        with self.core.store.transaction() as conn:
            items = outbox.claim_due(conn, self.core.clock.now(), limit, self.lease)
        # One lane per destination: a 429 then pauses the items behind it instead of racing them into more 429s.
        lanes = [(self._destination(item), item) for item in items]
        await in_lanes(lanes, lambda lane: lane[0], lambda lane: self._paced(*lane), LANES)
        return len(items)

    def seconds_to_next(self) -> float | None:
        """How long until the earliest queued item falls due, so a paced post leaves at its slot, not a tick later."""
        due = outbox.next_due(self.core.store.conn)
        return None if due is None else max(0.0, (due - self.core.clock.now()).total_seconds())

    async def _paced(self, destination: Destination, item: OutboxItem) -> None:
        now = self.core.clock.now()
        cost = self._cost(item, destination)
        slot = self.pacer.reserve(destination, now, str(item.id), cost)
        if slot > now:
            # Skipped, not blocked: items for other destinations in this batch still go out now.
            outbox.postpone(self.core.store.conn, item.id, slot)
            return
        with prepaid(destination, cost):  # the connector's budget must not count these calls twice
            await self._deliver(item, destination)

    def _destination(self, item: OutboxItem) -> Destination:
        """Where the item's traffic lands, as the platform counts it for rate limits."""
        kind = Effect(item.kind)
        if kind in (Effect.POST_CARD, Effect.NOTIFY):
            target = item.payload["target"]
            return f"{target['platform']}.post:{target['address']}"
        if kind is Effect.THREAD:
            homes = self._thread_homes(item.request_id or "")
            return f"{homes[0].target.platform}.post:{homes[0].target.address}" if homes else f"{self._platform(item)}.post"
        if kind is Effect.UPDATE_CARDS:
            # Teams counts an edit against its conversation's budget, with its posts; Slack limits chat.update per
            # workspace. An item editing cards in several conversations takes a slot in each.
            cards = self.core.store.cards(item.request_id or "")
            lanes = sorted({f"teams.post:{c.target.address}" if c.target.platform == "teams" else f"{c.target.platform}.update"
                            for c in cards}) or [f"{self._platform(item)}.update"]
            return lanes[0] if len(lanes) == 1 else tuple(lanes)
        request = self.core.store.get_request(item.request_id or "")
        return f"erp.{request.ref.source if request else 'unknown'}"

    def _cost(self, item: OutboxItem, destination: Destination) -> int:
        """How many calls the item makes where it is paced: one, but a write-back to an ERP that counts requests makes more."""
        if item.kind != Effect.ERP_WRITE:
            return 1
        connector = self.core.connectors.get(destination.removeprefix("erp."))
        if not isinstance(connector, CountsRequests) or (request := self.core.store.get_request(item.request_id or "")) is None:
            return 1  # Odoo publishes no request limit: one slot per write-back
        write = connector.requests(request.ref, Decision.model_validate(item.payload).verb)
        # After an unfinished claim, _already_written re-reads the record first, so as not to write it twice.
        return write + connector.requests(request.ref) if item.claims > 1 else write

    async def _deliver(self, item: OutboxItem, destination: Destination) -> None:
        store, now = self.core.store, self.core.clock.now()
        handler = {
            Effect.POST_CARD: self._post_card,
            Effect.UPDATE_CARDS: self._update_cards,
            Effect.THREAD: self._thread,
            Effect.NOTIFY: self._notify,
            Effect.ERP_WRITE: self._erp_write,
        }[Effect(item.kind)]
        try:
            await handler(item)
        except (ChatRateLimited, ErpThrottled) as error:
            # The platform told us when: waiting is not a failed attempt, and only this destination waits.
            retry_after = error.retry_after if error.retry_after is not None else self.backoff.delay(item.attempts + 1)
            until = now + timedelta(seconds=retry_after)
            self.pacer.pause(destination, until)
            outbox.postpone(store.conn, item.id, until)
            log.warning("outbox.paced", extra={"item": item.id, "destination": destination, "retry_after_s": retry_after})
            return
        except (Permanent, ChatError, ErpError) as error:
            permanent = isinstance(error, Permanent) or (isinstance(error, ChatError) and error.permanent)
            budget = self.erp_attempts if item.kind == Effect.ERP_WRITE else self.max_attempts
            if permanent or item.attempts + 1 >= budget:
                self._bury(item, str(error))
            else:
                retry_after = error.retry_after if isinstance(error, ErpUnavailable) else None
                delay = self.backoff.delay(item.attempts + 1, retry_after)
                outbox.reschedule(store.conn, item.id, now + timedelta(seconds=delay), str(error))
                log.warning("outbox.retry", extra={"item": item.id, "kind": item.kind, "delay_s": round(delay, 2), "error": str(error)})
            return
        outbox.complete(store.conn, item.id, self.core.clock.now())

    def _bury(self, item: OutboxItem, error: str) -> None:
        core = self.core
        log.error("outbox.dead", extra={"item": item.id, "kind": item.kind, "request_id": item.request_id, "error": error})
        with core.store.transaction() as conn:
            outbox.bury(conn, item.id, error)
            if item.kind == Effect.NOTIFY and item.payload["target"] == ops_target(core.routing, item.payload["target"]["platform"]).model_dump():
                return  # an alert that can't reach operations must not queue another alert about itself
            platform = self._platform(item)
            Effects(conn, core.clock.now()).notify(
                ops_target(core.routing, platform),
                f"A {item.kind.replace('_', ' ')} for {inert(self._reference(item))} failed and was set aside: {inert(error)}. "
                f"Fix the cause, then run `handoff outbox retry {item.id}` (or drop it with a reason).",
                item.request_id,
            )
        core.wake()

    def _platform(self, item: OutboxItem) -> str:
        request = self.core.store.get_request(item.request_id) if item.request_id else None
        return request.platform if request else self.core.routing.defaults.platform

    def _reference(self, item: OutboxItem) -> str:
        request = self.core.store.get_request(item.request_id) if item.request_id else None
        return request.reference if request else "an alert"

    def _channel(self, platform: str) -> ChatChannel:
        try:
            return self.channels[platform]
        except KeyError:
            raise Permanent(f"{platform} is not configured; set the HANDOFF_{platform.upper()}__* settings") from None

    def _request(self, item: OutboxItem) -> RequestState:
        request = self.core.store.get_request(item.request_id or "")
        if request is None:
            raise Permanent(f"request {item.request_id} no longer exists")
        return request

    async def _post_card(self, item: OutboxItem) -> None:
        store = self.core.store
        target = Target.model_validate(item.payload["target"])
        stage = item.payload["stage"]
        if store.card_posted(item.request_id, stage, target.platform, target.address):
            return  # delivered before a crash took the bookkeeping with it
        view = await self.approvals.view(item.request_id)
        channel = self._channel(target.platform)
        if isinstance(channel, FindsCards):
            posted = await self._find_lost_card(item, channel, target, view) or await channel.post_card(
                item.request_id, stage, target, view, key=item.idempotency_key)
        else:
            posted = await channel.post_card(item.request_id, stage, target, view)
        # A crash here leaves the platform with a card we have not recorded (RELIABILITY.md, "mid_post").
        crash_point("mid_post")
        with store.transaction():
            store.save_card(posted, self.core.clock.now())
            store.log(item.request_id, Event.CARD_POSTED, "handoff", {
                "stage": stage, "platform": target.platform, "kind": target.kind, "person": target.person,
                "conversation": posted.conversation, "message_id": posted.message_id, "version": view.packet.version,
            })

    async def _find_lost_card(self, item: OutboxItem, channel: FindsCards, target: Target, view: CardView) -> PostedCard | None:
        """On a claim after one that never finished, the card that claim may have posted before its answer was lost."""
        if item.claims <= 1:
            return None  # a first claim: nothing can have been posted yet
        since = datetime.fromisoformat(item.created_at) - CLOCK_MARGIN
        found = await channel.find_card(item.request_id, item.payload["stage"], target, item.idempotency_key, since)
        if found is None:
            return None
        log.info("card.found", extra={"item": item.id, "request_id": item.request_id, "message_id": found.message_id})
        try:
            # It shows the request as it stood then; bring it up to date before adopting it.
            await channel.update_card(found, view)
        except ChatError as error:
            if not error.permanent:
                raise
            # A card we cannot edit would stay stale forever: a second, live card is the lesser harm.
            log.warning("card.found_not_adopted", extra={"item": item.id, "request_id": item.request_id, "error": str(error)})
            return None
        return found

    async def _update_cards(self, item: OutboxItem) -> None:
        view = await self.approvals.view(item.request_id)
        for posted in self.core.store.cards(item.request_id):
            await self._channel(posted.target.platform).update_card(posted, view)

    def _thread_homes(self, request_id: str) -> list[PostedCard]:
        cards = self.core.store.cards(request_id)
        return [c for c in cards if c.target.kind == "channel"] or cards[:1]

    async def _thread(self, item: OutboxItem) -> None:
        request = self._request(item)
        if item.payload.get("what_changed"):
            text = what_changed(request, self.core.store.narrative(request.id), self.core.name_of)
        else:
            text = item.payload["text"]
        person = self.core.routing.people.get(item.payload.get("mention") or "")
        homes = self._thread_homes(request.id)
        if not homes and outbox.pending(self.core.store.conn, request.id, Effect.POST_CARD.value):
            # Lanes run side by side: the card this reply belongs under may still be on its way.
            raise ChatError(f"the card for {request.reference} is not posted yet; the thread reply waits for it")
        for posted in homes:
            mention = getattr(person, posted.target.platform, None) if person else None
            await self._channel(posted.target.platform).post_thread(posted, text, mention)

    async def _notify(self, item: OutboxItem) -> None:
        target = Target.model_validate(item.payload["target"])
        await self._channel(target.platform).notify(target, item.payload["text"])

    async def _erp_write(self, item: OutboxItem) -> None:
        core = self.core
        request = self._request(item)
        decision = Decision.model_validate(item.payload)
        connector = core.connector(request.ref)
        try:
            confirmed = await self._already_written(item, request, decision) or await connector.write_decision(request.packet.record, decision)
        except ErpThrottled:
            raise  # the ERP is up and only asked for a pause: nothing to tell the approvers
        except ErpUnavailable as error:
            self._tell_write_waits(request, error)
            raise
        except ErpConflict:
            await self._drifted_before_write(request)
            return
        except ErpError as error:
            self._write_failed(request, decision, error)
            raise Permanent(str(error)) from error
        core.outages.up(request.ref.source)
        crash_point("mid_write_back")
        status = RequestStatus.APPROVED if decision.verb is Verb.APPROVE else RequestStatus.REJECTED
        with core.store.transaction() as conn:
            core.store.set_status(request.id, status, core.clock.now())
            action = "approved" if decision.verb is Verb.APPROVE else f"rejected with reason “{decision.reason}”"
            core.store.log(request.id, Event.ERP_UPDATED, "handoff", {"action": action, "state": confirmed.state})
            core.store.log(request.id, Event.REQUEST_COMPLETED, "handoff", {"status": status.value})
            effects = Effects(conn, core.clock.now())
            effects.update_cards(request.id)
            effects.what_changed(request.id)
        core.wake()

    async def _drifted_before_write(self, request: RequestState) -> None:
        """The ERP refused the write because the record changed (412): the drift path, not a failure."""
        core = self.core
        live = await core.connector(request.ref).fetch_record(request.ref)
        if not live.awaiting_approval:
            with core.store.transaction() as conn:
                close_in_erp(core, conn, request, live)
        else:
            refresh_packet(core, request, live, seen_by="erp", reopen_stage=request.stage)
        core.wake()

    async def _already_written(self, item: OutboxItem, request: RequestState, decision: Decision) -> ErpRecord | None:
        """The live record when it already carries this decision: a retry after a crash must not write it twice."""
        if item.claims <= 1:
            return None  # a first claim: no earlier attempt can have written it (the full re-read cost 3-5 ERP calls)
        live = await self.core.connector(request.ref).fetch_record(request.ref)
        wanted = {Verb.APPROVE: "approved", Verb.REJECT: "rejected"}.get(decision.verb)
        return live if wanted is not None and live.erp_decision == wanted else None

    def _tell_write_waits(self, request: RequestState, error: ErpUnavailable) -> None:
        """Once per request, say in the card's thread that the decision is queued, instead of silence."""
        core = self.core
        since = core.outages.down(request.ref.source, core.clock.now())
        with core.store.transaction() as conn:
            Effects(conn, core.clock.now()).thread(
                request.id,
                f"{since.describe()}: the decision is kept and Handoff writes it back by itself when it answers.",
                # Per request, not per outage: reads may succeed between failed writes and end the outage meanwhile.
                key=f"erp-wait:{request.id}",
            )
        core.wake()

    def _write_failed(self, request: RequestState, decision: Decision, error: Exception) -> None:
        core = self.core
        with core.store.transaction():
            core.store.set_status(request.id, RequestStatus.FAILED, core.clock.now())
            core.store.log(request.id, Event.ERP_WRITE_FAILED, "handoff", {"verb": decision.verb.value, "error": str(error)})
            Effects(core.store.conn, core.clock.now()).update_cards(request.id)
