"""Core fixtures: a Core over a fresh store with the sample routing, and requests opened straight in the store."""

from __future__ import annotations

import pytest
from handoff.bot.core.context import Core
from handoff.bot.fakes.stack import SAMPLE_ROUTING
from handoff.bot.routing_file import load_routing
from opened_requests import open_request_in


@pytest.fixture
def core(fresh_store, clock) -> Core:
    return Core(store=fresh_store, routing=load_routing(SAMPLE_ROUTING), connectors={}, clock=clock)


@pytest.fixture
def open_request(core):
    """Open a request for an Odoo order as ingest would, without the HTTP around it."""
    return open_request_in(core)
