"""Fault injection for crash tests: HANDOFF_CRASH_AT=<point> kills the process, as `kill -9` would, at that point."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

POINTS = frozenset({"after_ingest", "after_route", "mid_post", "after_ack", "after_click", "mid_write_back"})
_ENV = "HANDOFF_CRASH_AT"


def crash_point(point: str) -> None:
    """Die here, without cleanup, when HANDOFF_CRASH_AT names this point; a no-op otherwise."""
    if point not in POINTS:
        raise ValueError(f"{point!r} is not a crash point; use one of {sorted(POINTS)}")
    if os.environ.get(_ENV) == point:
        log.critical("fault.injected", extra={"point": point})
        # os._exit skips atexit, finally blocks and SQLite's close: what SIGKILL leaves behind.
        os._exit(137)
