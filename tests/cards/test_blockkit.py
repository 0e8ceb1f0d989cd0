"""What an approver sees on a Slack card: the packet's facts, the gaps, and buttons bound to this version."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from handoff.bot.core.models import ErpPerson, Line, RequestStatus, VendorHistory
from handoff.cards.blockkit import ask_info_modal, reject_modal, render_card


def text_objects(node):
    """Every text object in the blocks, in order."""
    if isinstance(node, dict):
        if node.get("type") in {"mrkdwn", "plain_text"}:
            yield node
        for value in node.values():
            yield from text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from text_objects(item)


def card_text(blocks: list[dict]) -> str:
    """Every piece of text a person could read on the card, in order."""
    return "\n".join(t["text"] for t in text_objects(blocks))


def block(blocks: list[dict], block_id: str) -> dict:
    return next(b for b in blocks if b.get("block_id") == block_id)


def assert_valid(blocks: list[dict]) -> None:
    """slack_sdk's own Block Kit validators accept every block, and the message limit of 50 holds."""
    assert len(blocks) <= 50
    for each in blocks:
        Block.parse(each).to_dict()  # raises SlackObjectFormationError on any broken limit
    ids = [b["block_id"] for b in blocks]
    assert len(ids) == len(set(ids)) and all(len(i) <= 255 for i in ids)


def test_the_fallback_text_names_the_request(make_view):
    text, _ = render_card(make_view())

    assert text == "Approval needed: P00042 · Acme Supplies · 12,500.00 EUR"


def test_the_packet_facts_are_on_the_card(make_view):
    view = make_view(exception_type="Price above contract", headline="Waiting for Finance approver (stage 1 of 2)")

    _, blocks = render_card(view)
    shown = card_text(blocks)

    assert blocks[0]["type"] == "header" and blocks[0]["text"]["text"] == "P00042 · Approval needed"
    for fact in [
        "Acme Supplies", "12,500.00 EUR", "Sam Buyer (sam@example.com)", "Operations · EMEA", "Price above contract",
        "Stage 1 of 2 · Finance approver", "3 open orders · recent exceptions: late delivery",
        "Above 10,000 EUR: finance approves", "Waiting for Finance approver (stage 1 of 2)",
        "Item 1 — 1 × 100.00 = 100.00 EUR", "<https://erp.example.com/odoo/purchase/42|P00042>",
    ]:
        assert fact in shown
    assert_valid(blocks)


def test_eight_lines_show_the_top_five_and_how_many_more(make_view, make_lines):
    _, blocks = render_card(make_view(lines=make_lines(8)))
    lines = block(blocks, "handoff.lines")["text"]["text"]

    assert [row for row in lines.splitlines() if row.startswith("• ")] == [
        f"• Item {n} — {n} × 100.00 = {n * 100:,.2f} EUR" for n in range(1, 6)
    ]
    assert lines.endswith("_+3 more lines_")


def test_what_is_missing_is_spelled_out(make_view):
    _, blocks = render_card(make_view(missing=("No quotation attached", "No requester on the record")))

    assert block(blocks, "handoff.missing")["text"]["text"] == (
        "*Missing before you decide*\n• No quotation attached\n• No requester on the record"
    )


def test_an_incomplete_packet_says_why(make_view):
    reason = "Odoo could not be read (timeout); figures are from the webhook and will be re-read before any decision counts."

    _, blocks = render_card(make_view(incomplete_reason=reason))

    assert block(blocks, "handoff.incomplete")["text"]["text"] == f":warning: *Incomplete:* {reason}"


def test_a_drift_notice_comes_right_under_the_header(make_view):
    notice = "Refreshed from Odoo: amount 12,500.00 EUR → 13,100.00 EUR. Please decide again."

    _, blocks = render_card(make_view(notice=notice))

    assert [b["block_id"] for b in blocks[:3]] == ["handoff.header", "handoff.stage", "handoff.notice"]
    assert notice in blocks[2]["text"]["text"]


def test_history_lines_are_shown(make_view):
    history = ("14 Jun 11:20 UTC · Dana approved (stage 1)", "14 Jun 11:25 UTC · Routed by rule big-po to Finance")

    _, blocks = render_card(make_view(history=history))

    assert "\n".join(history) in card_text([block(blocks, "handoff.history")])


def test_buttons_carry_the_binding_to_this_version_and_stage(make_view):
    _, blocks = render_card(make_view(request_id="req-7", version=3, stage=1))
    buttons = block(blocks, "handoff.actions")["elements"]

    assert [(b["action_id"], b["text"]["text"], b.get("style")) for b in buttons] == [
        ("handoff.approve", "Approve", "primary"),
        ("handoff.reject", "Reject", "danger"),
        ("handoff.ask_info", "Ask for info", None),
        ("handoff.reassign", "Reassign", None),
    ]
    assert {b["value"] for b in buttons} == {'{"r":"req-7","v":3,"s":1}'}


@pytest.mark.parametrize("status", [RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.CLOSED_IN_ERP])
def test_a_decided_card_has_no_buttons_and_says_so(make_view, status):
    text, blocks = render_card(make_view(status=status, actionable=False, headline="Approved by Dana (stage 1). Odoo updated."))

    assert not [b for b in blocks if b["type"] == "actions"]
    assert not text.startswith("Approval needed")
    assert "Approved by Dana (stage 1). Odoo updated." in card_text(blocks)


@pytest.mark.parametrize(
    "vendor", ["<!channel>", "<https://evil.example|click here>", "*URGENT* _pay now_", "<@U0DANA> ~void~ `x`"]
)
def test_hostile_vendor_names_are_inert(make_view, vendor):
    text, blocks = render_card(make_view(vendor=vendor))

    for piece in [text, card_text(blocks)]:
        assert "<!channel>" not in piece and "<https://evil" not in piece and "<@U0DANA>" not in piece
        assert "*URGENT*" not in piece and "_pay now_" not in piece and "~void~" not in piece and "`x`" not in piece


def test_hostile_text_anywhere_in_the_packet_is_inert(make_view):
    evil = "<!channel> [x](http://evil.example)"
    view = make_view(
        reference="<!here>", requester=ErpPerson(name=evil), business_unit=evil, exception_type=evil,
        lines=(Line(description=evil, quantity=Decimal(1), unit_price=Decimal(1), subtotal=Decimal(1)),),
        vendor_history=VendorHistory(recent_exceptions=(evil,)), policy_notes=(evil,), missing=(evil,),
        incomplete_reason=evil, notice=evil, headline=evil, history=(evil,),
    )

    text, blocks = render_card(view)

    mrkdwn = [n["text"] for n in text_objects(blocks) if n["type"] == "mrkdwn"]
    assert all("<!" not in t for t in [text, *mrkdwn])
    assert all(n.get("verbatim") is True for n in text_objects(blocks) if n["type"] == "mrkdwn")


def test_a_huge_packet_still_fits_every_block_kit_limit(make_view, make_lines):
    long = "Ω&<" * 4000
    view = make_view(
        reference="P" * 500, vendor=long, requester=ErpPerson(name=long, email=long), business_unit=long, region=long,
        exception_type=long, url="https://erp.example.com/" + "a" * 5000,
        lines=tuple(Line(description=long, quantity=Decimal(1), unit_price=Decimal(1), subtotal=Decimal(1)) for _ in range(300)),
        vendor_history=VendorHistory(open_orders=10**6, recent_exceptions=(long,) * 50), policy_notes=(long,) * 40,
        missing=(long,) * 20, incomplete_reason=long, notice=long, headline=long, history=(long,) * 8,
    )

    text, blocks = render_card(view)

    assert_valid(blocks)
    assert 0 < len(text) <= 300
    assert all(len(f["text"]) <= 2000 for b in blocks for f in b.get("fields", []))
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section" and "text" in b)
    assert len(blocks[0]["text"]["text"]) <= 150
    assert block(blocks, "handoff.lines")["text"]["text"].endswith("_+295 more lines_")


def test_the_reject_modal_requires_a_reason_and_carries_the_card(make_view):
    modal = reject_modal("req-7", 3, 1, "C0PROC", "1718364000.000100")

    View(**modal).to_dict()  # slack_sdk's modal validators: title ≤ 24, ≤ 100 blocks, private_metadata ≤ 3000
    assert modal["callback_id"] == "handoff.reject_modal"
    (field,) = modal["blocks"]
    assert field["type"] == "input" and field["optional"] is False
    assert json.loads(modal["private_metadata"]) == {"r": "req-7", "v": 3, "s": 1, "channel": "C0PROC", "ts": "1718364000.000100"}


def test_the_ask_info_modal_matches_the_fixture_shape():
    modal = ask_info_modal("req-7", 3, 1, "C0PROC", "1718364000.000100")

    View(**modal).to_dict()
    assert modal["callback_id"] == "handoff.ask_info_modal"
    assert (modal["blocks"][0]["block_id"], modal["blocks"][0]["element"]["action_id"]) == ("question_block", "question_input")
    assert modal["blocks"][0]["element"]["multiline"] is True
    assert json.loads(modal["private_metadata"])["channel"] == "C0PROC"

