"""The facts Handoff records, named once, in the past tense. The decision log, log lines and threads use these."""

from enum import StrEnum


class Event(StrEnum):
    REQUEST_RECEIVED = "RequestReceived"
    PACKET_BUILT = "PacketBuilt"
    PACKET_ROUTED = "PacketRouted"
    ROUTING_FAILED = "RoutingFailed"
    CARD_POSTED = "CardPosted"
    DECISION_RECORDED = "DecisionRecorded"
    DECISION_REFUSED = "DecisionRefused"
    DRIFT_DETECTED = "DriftDetected"
    STAGE_COMPLETED = "StageCompleted"
    INFO_REQUESTED = "InfoRequested"
    INFO_PROVIDED = "InfoProvided"
    ERP_UPDATED = "ErpUpdated"
    ERP_WRITE_FAILED = "ErpWriteFailed"
    REQUEST_COMPLETED = "RequestCompleted"
    REQUEST_CLOSED_IN_ERP = "RequestClosedInErp"
    REQUEST_STALLED = "RequestStalled"
    STAGE_ESCALATED = "StageEscalated"
    DELEGATION_GRANTED = "DelegationGranted"
    DELEGATION_REVOKED = "DelegationRevoked"
    STAGE_REASSIGNED = "StageReassigned"
    OUTBOX_ITEM_DROPPED = "OutboxItemDropped"
