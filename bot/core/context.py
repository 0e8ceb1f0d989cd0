"""What every core service shares: the store, the routing config, the ERP connectors and the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from handoff.state.store import Store

from .errors import ConfigError
from .followups import Followups
from .models import RecordRef
from .outage import Outages
from .ports import Clock, ErpConnector
from .retry import Backoff
from .route import RoutingConfig


@dataclass
class Core:
    store: Store
    routing: RoutingConfig
    connectors: Mapping[str, ErpConnector]
    clock: Clock
    # Enrichment can wait for an ERP to come back; a click cannot keep a person waiting that long.
    enrich_backoff: Backoff = Backoff(attempts=4, base_delay=0.5, max_delay=8.0)
    click_backoff: Backoff = Backoff(attempts=2, base_delay=0.2, max_delay=0.5)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    wake: Callable[[], None] = field(default=lambda: None)
    outages: Outages = field(default_factory=Outages)
    # What chat adapters do after answering a click (the decision, a modal, a private reply).
    followups: Followups = field(default_factory=Followups)

    def connector(self, ref: RecordRef) -> ErpConnector:
        try:
            return self.connectors[ref.source]
        except KeyError:
            raise ConfigError(
                f"No {ref.source} connector is configured, but request {ref.key} needs one. "
                f"Set the HANDOFF_{ref.source.upper()}__* settings."
            ) from None

    def name_of(self, key: str | None) -> str:
        """A person's display name for narratives; system actors keep their own name."""
        if key is None:
            return "someone"
        person = self.routing.people.get(key)
        return person.name if person else key
