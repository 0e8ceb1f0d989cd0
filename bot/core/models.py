"""Handoff's own vocabulary: the models every layer speaks, free of any platform or ERP type."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Source = Literal["odoo", "dataverse"]
Platform = Literal["slack", "teams"]


def _as_chain(value: object) -> object:
    # One role reads as a one-step chain, so `escalate_to = "x"` and plans stored before chains still load.
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value


# The roles a stalled stage escalates to, one per further SLA period, in order.
EscalationChain = Annotated[tuple[str, ...], BeforeValidator(_as_chain)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordRef(Frozen):
    """Which ERP record a request is about: the key that survives every re-read."""

    source: Source
    model: str
    record_id: str

    @property
    def key(self) -> str:
        return f"{self.source}:{self.model}:{self.record_id}"


class SourceEvent(Frozen):
    """An ERP webhook, parsed at the connector's edge. The payload is only a hint: always re-read."""

    ref: RecordRef
    dedup_key: str
    received_at: datetime
    hint: dict[str, object] = Field(default_factory=dict)


class Line(Frozen):
    description: str
    quantity: Decimal
    unit_price: Decimal
    subtotal: Decimal


class ErpPerson(Frozen):
    """Someone as the ERP knows them; `login` is what routing config matches on."""

    name: str
    login: str | None = None
    email: str | None = None


class VendorHistory(Frozen):
    open_orders: int = 0
    recent_exceptions: tuple[str, ...] = ()


class ErpRecord(Frozen):
    """The live record read back from the ERP, normalised. `state` is the ERP's own state value."""

    ref: RecordRef
    reference: str
    state: str
    vendor: str
    amount: Decimal
    currency: str
    requester: ErpPerson | None = None
    lines: tuple[Line, ...] = ()
    business_unit: str | None = None
    region: str | None = None
    exception_type: str | None = None
    attachment_count: int = 0
    url: str | None = None
    etag: str | None = None
    vendor_history: VendorHistory = VendorHistory()
    awaiting_approval: bool = True
    # Set when the ERP itself shows the outcome (approved or rejected there, or by our write-back).
    erp_decision: Literal["approved", "rejected"] | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None  # when the ERP says the decision was taken, in UTC

    def fingerprint(self) -> str:
        """Digest of what an approver decides on; a different digest means the picture changed."""
        material = {
            "amount": str(self.amount),
            "currency": self.currency,
            "vendor": self.vendor,
            "state": self.state,
            "lines": [[ln.description, str(ln.quantity), str(ln.unit_price)] for ln in self.lines],
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


class ApprovalPacket(Frozen):
    """Everything an approver needs, as it was shown. `version` rises each time the picture changes."""

    request_id: str
    version: int
    record: ErpRecord
    policy_notes: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    incomplete_reason: str | None = None
    fingerprint: str


class StageMode(StrEnum):
    FIRST = "first"  # first responder decides for the stage
    QUORUM = "quorum"  # N approvals out of the role's members
    ALL = "all"  # every member must approve


class Delivery(StrEnum):
    CHANNEL = "channel"
    DM = "dm"


class StagePlan(Frozen):
    """One stage as the matched rule lays it out."""

    index: int
    role: str
    mode: StageMode = StageMode.FIRST
    quorum: int = 1
    delivery: Delivery = Delivery.CHANNEL
    channel: str | None = None
    sla_hours: float = 8.0
    escalate_to: EscalationChain = ()


class RoutePlan(Frozen):
    rule: str
    level: str
    stages: tuple[StagePlan, ...]
    policy_notes: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


class Person(Frozen):
    """A member of a role, with the identities that bind them across chat and ERP."""

    key: str
    name: str
    slack: str | None = None
    teams: str | None = None
    email: str | None = None
    erp_login: str | None = None
    business_units: tuple[str, ...] = ()


class Target(Frozen):
    """Where a card goes: a channel, or one person's DM, on one platform."""

    platform: Platform
    kind: Literal["channel", "dm"]
    address: str  # Slack channel id / user id, Teams conversation id / AAD object id
    person: str | None = None  # Person.key for DMs


class PostedCard(Frozen):
    """A card as the chat platform keeps it: enough to update it in place or reply in its thread."""

    request_id: str
    stage: int
    target: Target
    conversation: str
    message_id: str


class Verb(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    ASK_INFO = "ask_info"


class ChatIdentity(Frozen):
    """Who clicked, as the verified chat request says: never a value the client could choose."""

    platform: Platform
    user_id: str
    display_name: str | None = None


class Action(Frozen):
    """A click, already bound to a verified identity and to the packet version it was made on."""

    request_id: str
    version: int
    stage: int
    verb: Verb
    actor: ChatIdentity
    comment: str | None = None
    # The stored click's inbox row (core/clicks.py): settled in the transaction that counts it, so a replay counts once.
    inbox_id: int | None = None


class RequestStatus(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    CLOSED_IN_ERP = "closed_in_erp"
    FAILED = "failed"


class Outcome(StrEnum):
    """What Handoff answers an action with; the chat adapter turns it into words."""

    RECORDED = "recorded"
    STAGE_DECIDED = "stage_decided"
    REQUEST_DECIDED = "request_decided"
    ALREADY_DECIDED = "already_decided"
    STALE_CARD = "stale_card"
    DRIFTED = "drifted"
    OWN_REQUEST = "own_request"
    NOT_AN_APPROVER = "not_an_approver"
    NOT_OPEN = "not_open"
    UNKNOWN_REQUEST = "unknown_request"
    INFO_REQUESTED = "info_requested"
    ERP_UNREACHABLE = "erp_unreachable"
    STORE_UNREACHABLE = "store_unreachable"


class ActionResult(Frozen):
    outcome: Outcome
    message: str
    decided_by: str | None = None


class Decision(Frozen):
    """What Handoff writes back to the ERP once the last stage is decided."""

    verb: Verb
    by: str
    reason: str | None = None
    at: datetime


class CardView(Frozen):
    """A packet plus where it stands: the one thing card renderers turn into Block Kit or Adaptive Cards."""

    packet: ApprovalPacket
    stage: int
    stage_count: int
    role: str
    status: RequestStatus
    headline: str
    history: tuple[str, ...] = ()
    notice: str | None = None
    actionable: bool = True


class RequestState(Frozen):
    """A request as stored: the packet as last shown and where it stands."""

    id: str
    ref: RecordRef
    reference: str
    status: RequestStatus
    version: int
    stage: int
    platform: Platform
    requester: str | None  # Person.key, for separation of duties
    packet: ApprovalPacket
    plan: RoutePlan
    created_at: datetime
    updated_at: datetime


class Vote(Frozen):
    stage: int
    person: str
    verb: Verb
    version: int
    comment: str | None = None
    at: datetime


class StageState(Frozen):
    stage: int
    status: Literal["waiting", "pending", "approved", "rejected"]
    started_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
