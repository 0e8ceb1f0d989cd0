"""The Teams card: Adaptive Card 1.5 that validates for Teams, shows the packet, binds its buttons, stays small."""

from __future__ import annotations

import json
import re

import pytest
from teams_schema import assert_valid_for_teams

from handoff.bot.core.models import RequestStatus
from handoff.cards.adaptive import BUDGET_BYTES, render_card

BINDING = {"r": "req-1", "v": 1, "s": 0}


def shown(markdown: str) -> str:
    """What a CommonMark renderer shows for escaped text: backslash-escaped punctuation as itself (spec §2.4)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def texts(card: dict) -> list[str]:
    """Every TextBlock text and fact, in order, as a person would read them."""
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(shown(node["text"]))
            if "title" in node and "value" in node and isinstance(node["value"], str):
                found.append(f"{node['title']}: {shown(node['value'])}")
            for key, value in node.items():
                if key != "fallback":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card["body"])
    return found


def actions(card: dict) -> list[dict]:
    return [a for block in card["body"] if block["type"] == "ActionSet" for a in block["actions"]]


def test_an_open_request_is_a_valid_1_5_card_with_every_fact(make_view):
    view = make_view(exception_type="Price variance", missing=("Signed quote",), incomplete_reason="Odoo did not answer",
                     notice="Refreshed from Odoo: amount 12,000.00 → 12,500.00 EUR", history=("14 Jun 09:00 UTC · Routed",))

    card = render_card(view)

    assert_valid_for_teams(card)
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.5")
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    seen = texts(card)
    for expected in (
        "Approval needed: P00042", "Stage 1 of 2 · Finance approver", "Waiting for Finance approver (stage 1 of 2)",
        "Vendor: Acme Supplies", "Amount: 12,500.00 EUR", "Requester: Sam Buyer (sam@example.com)",
        "Unit: Operations · EMEA", "Exception: Price variance", "Vendor history: 3 open orders · recent exceptions: late delivery",
        "Item 1 — 1 × 100.00 = 100.00 EUR", "Above 10,000 EUR: finance approves", "Signed quote",
        "Incomplete: Odoo did not answer", "Refreshed from Odoo: amount 12,000.00 → 12,500.00 EUR", "14 Jun 09:00 UTC · Routed",
    ):
        assert expected in seen
    assert shown(card["fallbackText"]) == "Approval needed: P00042 · Acme Supplies · 12,500.00 EUR"


def test_buttons_are_universal_actions_bound_to_the_version_with_a_submit_fallback(make_view):
    approve, reject, ask, link = actions(render_card(make_view()))

    assert (approve["type"], approve["verb"], approve["data"]) == ("Action.Execute", "handoff.approve", BINDING)
    assert approve["fallback"] == {**approve["fallback"], "type": "Action.Submit", "data": {**BINDING, "verb": "handoff.approve"}}
    for show, input_id, verb in ((reject, "reason", "handoff.reject"), (ask, "question", "handoff.ask_info")):
        assert show["type"] == "Action.ShowCard"
        [field] = show["card"]["body"]
        assert (field["type"], field["id"], field["isRequired"]) == ("Input.Text", input_id, True)
        [submit] = show["card"]["actions"]
        assert (submit["type"], submit["verb"], submit["data"]) == ("Action.Execute", verb, BINDING)
        assert submit["fallback"]["type"] == "Action.Submit" and submit["fallback"]["data"]["verb"] == verb
    assert link == {**link, "type": "Action.OpenUrl", "url": "https://erp.example.com/odoo/purchase/42", "title": "Open in Odoo"}


def test_refresh_targets_at_most_60_approvers(make_view):
    card = render_card(make_view(), [f"29:user-{n}" for n in range(75)])

    assert card["refresh"]["action"] == {**card["refresh"]["action"], "type": "Action.Execute", "verb": "handoff.refresh", "data": BINDING}
    assert card["refresh"]["userIds"] == [f"29:user-{n}" for n in range(60)]


def test_without_known_approvers_teams_decides_who_refreshes(make_view):
    assert "userIds" not in render_card(make_view(), [])["refresh"]


def test_a_decided_request_has_no_buttons_and_no_refresh(make_view):
    card = render_card(make_view(status=RequestStatus.APPROVED, actionable=False, headline="Approved by Dana (stage 1). Odoo updated."))

    assert_valid_for_teams(card)
    assert "refresh" not in card
    assert [a["type"] for a in actions(card)] == ["Action.OpenUrl"]
    assert texts(card)[0] == "Approved: P00042"


def test_erp_text_is_shown_literally(make_view):
    card = render_card(make_view(vendor="[click](http://evil) **now**", reference="{{DATE(2024-01-01T00:00:00Z)}}"))

    raw = json.dumps(card)
    assert "[click](http://evil)" not in raw and "**now**" not in raw and "{{DATE" not in raw
    assert "Vendor: [click](http://evil) **now**" in texts(card)


def test_a_link_that_is_not_http_never_becomes_a_button(make_view):
    card = render_card(make_view(url="javascript:alert(1)"))

    assert "Action.OpenUrl" not in [a["type"] for a in actions(card)]


def test_sixty_lines_show_the_top_five_and_how_many_more(make_view, make_lines):
    seen = texts(render_card(make_view(lines=make_lines(60))))

    assert [t for t in seen if t.startswith("Item ")] == [f"Item {n} — {n} × 100.00 = {n * 100:,}.00 EUR" for n in range(1, 6)]
    assert "+55 more lines" in seen


@pytest.mark.parametrize("size", [3_000, 30_000])
def test_an_oversize_packet_degrades_under_the_budget_and_keeps_the_decision(make_view, make_lines, size):
    lines = tuple(line.model_copy(update={"description": f"{line.description} " + "spec " * (size // 5)}) for line in make_lines(60))
    view = make_view(lines=lines, vendor="V" * size, policy_notes=tuple("note " * (size // 5) for _ in range(12)),
                     missing=tuple(f"missing {n}" for n in range(12)), history=tuple("event " * 400 for _ in range(8)))

    card = render_card(view)

    assert len(json.dumps(card, separators=(",", ":")).encode()) <= BUDGET_BYTES
    assert_valid_for_teams(card)
    assert [a.get("verb") for a in actions(card)][0] == "handoff.approve"
    assert actions(card)[-1]["type"] == "Action.OpenUrl"
    assert any(t.startswith("+") and "more lines" in t for t in texts(card))
