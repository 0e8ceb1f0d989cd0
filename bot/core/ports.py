"""The small interfaces the core needs; adapters in connectors/ and bot/channels/ satisfy them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

from .models import (
    Action,
    ActionResult,
    CardView,
    ChatIdentity,
    Decision,
    ErpRecord,
    Person,
    Platform,
    PostedCard,
    RecordRef,
    Source,
    SourceEvent,
    Target,
    Verb,
)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ErpConnector(Protocol):
    """Reads the live record and writes decisions back. Raises the errors in core/errors.py."""

    source: Source

    async def fetch_record(self, ref: RecordRef) -> ErpRecord: ...

    async def unchanged(self, record: ErpRecord) -> bool | None:
        """Whether the ERP still has `record` as read (one cheap call, by its etag); None when it can't tell."""

    async def write_decision(self, record: ErpRecord, decision: Decision) -> ErpRecord:
        """Carry out the decision in the ERP, re-read the record to confirm it took, and return it.

        Raises ErpRefused when the ERP ignored or refused it (with the fix), ErpConflict when the record changed.
        """

    async def post_note(self, ref: RecordRef, text: str) -> None:
        """Add a note to the record's own history (Odoo chatter, Dataverse annotation)."""

    def record_url(self, ref: RecordRef) -> str | None: ...

    def record_from_hint(self, event: SourceEvent) -> ErpRecord:
        """A best-effort record from the webhook's own fields, for when the ERP cannot be read."""


class ChatChannel(Protocol):
    """Posts and updates cards on one chat platform. Raises ChatError / ChatRateLimited."""

    platform: Platform

    async def post_card(self, request_id: str, stage: int, target: Target, view: CardView) -> PostedCard: ...

    async def update_card(self, posted: PostedCard, view: CardView) -> None: ...

    async def post_thread(self, posted: PostedCard, text: str, mention: str | None = None) -> None:
        """Reply in the card's thread; `mention` is the platform user id to address."""

    async def notify(self, target: Target, text: str) -> None: ...

    async def post_alert(self, target: Target, text: str) -> tuple[str, str]:
        """Post a message that will be edited later (stall alerts); return (conversation, message id)."""

    async def update_alert(self, conversation: str, message_id: str, text: str) -> None: ...


class Approvals(Protocol):
    """What chat adapters call into: the core's decision service."""

    async def act(self, action: Action) -> ActionResult: ...

    async def view(self, request_id: str) -> CardView | None: ...

    def person_for(self, identity: ChatIdentity) -> Person | None: ...


class ConversationDirectory(Protocol):
    """Where chat adapters keep the references they need to reach people and channels later (proactive posts)."""

    async def save_conversation(self, platform: Platform, key: str, reference: dict) -> None: ...

    async def find_conversation(self, platform: Platform, key: str) -> dict | None: ...


@runtime_checkable
class CountsRequests(Protocol):
    """An ERP whose rate limit counts HTTP requests (Dataverse: 6000 per 5 minutes per user), so pacing needs the count."""

    def requests(self, ref: RecordRef, verb: Verb | None = None) -> int:
        """At most how many requests `fetch_record(ref)` makes, or, given a verb, `write_decision` with it."""


@runtime_checkable
class FindsCards(Protocol):
    """A channel that tags each card with its outbox key and can find it again (Slack: message metadata; Teams: the
    card's hidden header id, read back through Microsoft Graph in channels and group chats when graph_read is on).

    `find_card` answers None where the platform can't look (Teams 1:1 chats): the card is posted as before.
    """

    async def post_card(self, request_id: str, stage: int, target: Target, view: CardView, key: str | None = None) -> PostedCard: ...

    async def find_card(self, request_id: str, stage: int, target: Target, key: str, since: datetime) -> PostedCard | None: ...

    async def update_card(self, posted: PostedCard, view: CardView) -> None: ...
