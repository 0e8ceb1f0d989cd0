"""Retry with exponential backoff and full jitter, honouring the server's own Retry-After hint."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import ErpUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `call`, retrying ErpUnavailable; the last failure propagates unchanged."""
    for attempt in range(1, backoff.attempts + 1):
        try:
            return await call()
        except ErpUnavailable as error:
            if attempt == backoff.attempts:
                raise
            delay = backoff.delay(attempt, error.retry_after)
            log.warning("erp.retry", extra={"what": what, "attempt": attempt, "delay_s": round(delay, 3), "error": str(error)})
            await sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")
