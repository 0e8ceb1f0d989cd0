"""The Teams inbox card: one set of buttons per item bound like packet cards, unique inputs, and always within Teams' size."""

from __future__ import annotations

import json

from handoff.bot.channels.teams_commands import INBOX_ITEMS
from handoff.cards.adaptive import BUDGET_BYTES
from handoff.cards.adaptive_inbox import InboxItem, render_inbox
from teams_schema import assert_valid_for_teams

PEOPLE = (("dana", "Dana Approver"), ("erik", "Erik Lindqvist"), ("fiona", "Fiona Finance"))


def walk(node: object):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def item(n: int, summary: str = "P00043 — Northwind Traders, 3,240.00 EUR; stage 1 of 1, waiting 2 h 5 min") -> InboxItem:
    return InboxItem(f"req-{n:04d}", 2, 0, summary, "https://odoo.example.com/web#id=43&model=purchase.order", PEOPLE)


def test_each_item_has_the_packet_card_verbs_and_binding_and_its_own_inputs():
    card = render_inbox("2 waiting for your decision.", [item(1), item(2)], [["req-0001", 2, 0], ["req-0002", 2, 0]])

    assert_valid_for_teams(card)

    executes = [n for n in walk(card) if n.get("type") == "Action.Execute"]
    for_first = {n["verb"] for n in executes if n["data"].get("r") == "req-0001"}
    assert for_first == {"handoff.approve", "handoff.reject", "handoff.ask_info", "handoff.reassign"}
    assert all(n["data"]["v"] == 2 and n["data"]["s"] == 0 for n in executes if "r" in n["data"])
    [bulk] = [n for n in executes if n["verb"] == "handoff.bulk_approve"]
    assert bulk["title"] == "Approve all 2" and bulk["data"]["items"] == [["req-0001", 2, 0], ["req-0002", 2, 0]]
    inputs = [n["id"] for n in walk(card) if str(n.get("type", "")).startswith("Input.")]
    assert len(inputs) == len(set(inputs)) == 6 and "reason.req-0001" in inputs


def test_an_inbox_too_big_for_teams_shows_what_fits_and_says_more_wait():
    items = [item(n, "x" * 500) for n in range(INBOX_ITEMS)]
    bulk = [[i.request_id, 2, 0] for i in items]

    card = render_inbox(f"{INBOX_ITEMS} waiting for your decision.", items, bulk, ["✓ P00001: Approved."] * INBOX_ITEMS)

    assert_valid_for_teams(card)
    assert len(json.dumps(card, separators=(",", ":")).encode()) <= BUDGET_BYTES
    shown = {n["data"]["r"] for n in walk(card) if n.get("type") == "Action.Execute" and "r" in n.get("data", {})}
    assert 0 < len(shown) < INBOX_ITEMS
    assert f"{INBOX_ITEMS - len(shown)} more wait below these" in json.dumps(card)
    [approve_all] = [n for n in walk(card) if n.get("type") == "Action.Execute" and n["verb"] == "handoff.bulk_approve"]
    assert {r for r, _, _ in approve_all["data"]["items"]} == shown, "Approve all approves only what the card shows"
