"""Wait on a condition with a deadline: how tests and the demo observe asynchronous work without sleeping blind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(condition: Callable[[], T], *, timeout: float = 5.0, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy; raise TimeoutError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
