"""The shared inbox: what waits for whom, which items may be approved together, the Approve all payload and parsing."""

from __future__ import annotations

import re
from datetime import date

import pytest

from handoff.bot.core import delegation, inbox


def test_the_inbox_lists_the_oldest_first_and_says_how_many_it_leaves_out(core, open_request):
    first, second, _ = open_request("P00043"), open_request("P00044"), open_request("P00045")

    title, shown = inbox.pending(core, core.routing.people["dana"], limit=2)

    assert title == "3 waiting for your decision. Showing the oldest 2."
    assert [r.reference for r in shown] == [first.reference, second.reference]
    assert inbox.pending(core, core.routing.people["marc"], limit=5) == (inbox.NOTHING_PENDING, [])


def test_only_requests_of_a_bulk_rule_are_approved_together_and_never_one_alone(core, open_request):
    requests = [open_request("P00043"), open_request("P00045")]
    assert inbox.bulk_approvable(core, requests) == [], "the sample rules allow no bulk approval"

    rules = [rule.model_copy(update={"bulk_approve": True}) for rule in core.routing.rules]
    core.routing = core.routing.model_copy(update={"rules": rules})
    assert inbox.bulk_approvable(core, requests) == requests
    assert inbox.bulk_approvable(core, requests[:1]) == []
    assert inbox.parse_items(inbox.items_of(requests)) == [(r.id, r.version, r.stage) for r in requests]


@pytest.mark.parametrize("value", [None, "x", [["r", "1", 0]], [["r", 1]], [[1, 1, 0]], [["r", True, 0]], {"r": 1}])
def test_an_approve_all_payload_handoff_did_not_write_reads_as_nothing(value):
    assert inbox.parse_items(value) == []


def test_reassign_candidates_are_the_role_and_its_escalation_role_without_the_requester(core, open_request):
    request = open_request("P00043")  # po-standard: procurement managers, escalating to the finance director

    assert [p.key for p in delegation.candidates(core, request)] == ["dana", "erik", "fiona"]


@pytest.mark.parametrize(("text", "expected"), [
    ("@erik until 2026-12-01", (date(2026, 12, 1), None)),
    ("erik from 2026-11-24 until 2026-12-01", (date(2026, 12, 1), date(2026, 11, 24))),
])
def test_a_delegation_window_is_read_from_the_text(text, expected):
    assert delegation.parse_window(text, "HELP") == expected
    assert delegation.without_window(text).lstrip("@") == "erik"


@pytest.mark.parametrize(("text", "says"), [("erik until soon", "“soon” is not a date"), ("erik", "Until when? HELP")])
def test_a_window_handoff_cannot_read_says_how_to_write_it(text, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        delegation.parse_window(text, "HELP")
