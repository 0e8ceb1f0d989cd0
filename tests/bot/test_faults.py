"""Fault injection stays inert unless HANDOFF_CRASH_AT names the point (the crash itself: tests/reliability)."""

from __future__ import annotations

import pytest

from handoff.bot.faults import crash_point


def test_an_unarmed_point_does_nothing(monkeypatch):
    monkeypatch.setenv("HANDOFF_CRASH_AT", "mid_post")
    crash_point("after_route")
    monkeypatch.delenv("HANDOFF_CRASH_AT")
    crash_point("mid_post")


def test_a_misspelt_point_is_a_bug_caught_at_once():
    with pytest.raises(ValueError, match=r"^'mid-post' is not a crash point; use one of \['after_ack', 'after_click', "):
        crash_point("mid-post")
