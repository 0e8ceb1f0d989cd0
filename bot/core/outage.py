"""ERP outages as people see them: since when a source is unreachable, said once, and cleared when it answers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outage:
    source: str
    since: datetime

    @property
    def key(self) -> str:
        """Names this outage in idempotency keys, so each notice goes out once per outage."""
        return f"{self.source}:{self.since.isoformat()}"

    def describe(self) -> str:
        return f"{self.source.capitalize()} unreachable since {self.since:%H:%M} UTC, retrying"


@dataclass
class Outages:
    """In memory on purpose: after a restart the first failed call starts a new outage, which is still true."""

    _down: dict[str, Outage] = field(default_factory=dict)

    def down(self, source: str, now: datetime) -> Outage:
        """The outage `source` is in, starting one now if it was up."""
        if source not in self._down:
            self._down[source] = Outage(source, now)
            log.warning("erp.unreachable", extra={"source": source, "since": now.isoformat()})
        return self._down[source]

    def up(self, source: str) -> Outage | None:
        """`source` answered: the outage it was in, now over, or None."""
        ended = self._down.pop(source, None)
        if ended is not None:
            log.info("erp.reachable", extra={"source": source, "since": ended.since.isoformat()})
        return ended

    def current(self, source: str) -> Outage | None:
        return self._down.get(source)
