"""Side effects the core asks for. Each is queued in the outbox inside the transaction that made it necessary."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from handoff.state import outbox

from .models import Decision, Target


class Effect(StrEnum):
    POST_CARD = "post_card"
    UPDATE_CARDS = "update_cards"
    THREAD = "thread"
    NOTIFY = "notify"
    ERP_WRITE = "erp_write"


class Effects:
    """Typed constructors over the outbox; `conn` is the open transaction's connection."""

    def __init__(self, conn, now: datetime) -> None:
        self.conn = conn
        self.now = now

    def _put(self, kind: Effect, payload: dict, key: str, request_id: str | None) -> None:
        outbox.enqueue(self.conn, self.now, kind.value, payload, key, request_id)

    def post_card(self, request_id: str, stage: int, target: Target) -> None:
        key = f"post:{request_id}:{stage}:{target.platform}:{target.kind}:{target.address}"
        self._put(Effect.POST_CARD, {"stage": stage, "target": target.model_dump()}, key, request_id)

    def update_cards(self, request_id: str) -> None:
        # Updates render the request as it stands when delivered, so each state change needs its own key.
        self._put(Effect.UPDATE_CARDS, {}, f"update:{request_id}:{uuid.uuid4().hex}", request_id)

    def thread(self, request_id: str, text: str, mention: str | None = None, key: str | None = None) -> None:
        self._put(Effect.THREAD, {"text": text, "mention": mention}, key or f"thread:{request_id}:{uuid.uuid4().hex}", request_id)

    def what_changed(self, request_id: str) -> None:
        self._put(Effect.THREAD, {"what_changed": True}, f"what-changed:{request_id}:{uuid.uuid4().hex}", request_id)

    def notify(self, target: Target, text: str, request_id: str | None = None, key: str | None = None) -> None:
        self._put(
            Effect.NOTIFY, {"target": target.model_dump(), "text": text}, key or f"notify:{uuid.uuid4().hex}", request_id
        )

    def erp_write(self, request_id: str, version: int, decision: Decision) -> None:
        # One write-back per packet version: a retry is a no-op; only a refreshed picture can be decided again.
        self._put(Effect.ERP_WRITE, decision.model_dump(mode="json"), f"erp:{request_id}:v{version}", request_id)


class BatchEffects(Effects):
    """Effects held until flush(), then queued in one statement: for a transaction that queues hundreds (a scheduler tick)."""

    def __init__(self, conn, now: datetime) -> None:
        super().__init__(conn, now)
        self.held: list[tuple[str, dict, str, str | None]] = []

    def _put(self, kind: Effect, payload: dict, key: str, request_id: str | None) -> None:
        self.held.append((kind.value, payload, key, request_id))

    def flush(self) -> None:
        """Queue what is held, in the order it was asked for; call before the transaction commits."""
        if self.held:
            outbox.enqueue_many(self.conn, self.now, self.held)
            self.held = []
