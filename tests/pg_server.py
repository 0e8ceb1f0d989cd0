"""The PostgreSQL server for tests that need one whatever the store backend, and the mark that skips them without it."""

from __future__ import annotations

import pytest

from handoff.bot.fakes.postgres import configured_database, reachable

SERVER = configured_database() or "postgresql://postgres@127.0.0.1:5432/test"
_UNREACHABLE = reachable(SERVER)
requires_server = pytest.mark.skipif(_UNREACHABLE is not None, reason=_UNREACHABLE or "")
