"""Errors the core raises or expects from adapters. Every message names the fact, the cause and the next step."""

from __future__ import annotations


class HandoffError(Exception):
    """Base of every error Handoff raises on purpose."""


class ConfigError(HandoffError):
    """The configuration is wrong; the message says where and how to fix it."""


class BadEvent(HandoffError):
    """An inbound webhook that cannot be taken: answered with a 4xx and the reason."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class IgnoredEvent(HandoffError):
    """A well-formed webhook nobody routes: answered 202 and logged, never an error."""


class ErpError(HandoffError):
    """A call to the ERP failed."""


class ErpUnavailable(ErpError):
    """Transient: down, timed out, throttled. Worth retrying; `retry_after` is the ERP's own hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ErpThrottled(ErpUnavailable):
    """The ERP's rate limit answered (429): nothing more goes to it before `retry_after`; not a failed attempt."""


class ErpRefused(ErpError):
    """Permanent: the ERP said no (access rights, validation). Retrying won't help; a human must act."""


class ErpConflict(ErpError):
    """The record changed under us (Dataverse 412 on If-Match): the drift path, not a failure."""


class RecordNotFound(ErpError):
    """The record is gone or not visible to the API user."""


class ChatError(HandoffError):
    """A chat platform call failed; `permanent` ones (channel_not_found, not installed) need a human."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ChatRateLimited(ChatError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(HandoffError):
    """The database connection is lost and not back yet; the operation did not happen, or its transaction rolled back.

    Transient like ErpUnavailable: callers keep the work queued and retry; `retry_after` is when the next reconnect
    attempt is due, in seconds.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
