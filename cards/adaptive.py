"""Card view -> Adaptive Card 1.5 with Universal Actions, validated for Teams and kept under its size limit."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from adaptive_cards import card as ac
from adaptive_cards import types as act

from handoff.bot.core.models import CardView

from . import text
from .escape import escape_adaptive, truncate

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
VERSION = "1.5"  # Universal Actions need 1.5 in Teams (msteams-docs Work-with-Universal-Actions-for-Adaptive-Cards.md)
APPROVE, REJECT, ASK_INFO, REFRESH = "handoff.approve", "handoff.reject", "handoff.ask_info", "handoff.refresh"
REASSIGN, BULK_APPROVE = "handoff.reassign", "handoff.bulk_approve"
# Input ids; in an inbox several items share one card, so each item's ids end in ".<request id>" to stay unique.
REASON, QUESTION, ASSIGNEE = "reason", "question", "assignee"
MAX_REFRESH_USERS = 60  # Teams auto-refreshes for at most 60 user MRIs (same doc, "User IDs in refresh")
# A posted card's header carries its outbox key as the element `id` (Adaptive Cards schema: every element may have an
# `id`; readers never see it), so a post whose answer was lost can be found again through Microsoft Graph.
KEY_PREFIX = "handoff.key:"
# adaptive-cards-py's Teams target allows 28 KB, tighter than the 80 KB msteams-docs recommends for a whole message
# (bots/how-to/format-your-bot-messages.md); staying under it keeps every card valid by the package's own check.
BUDGET_BYTES = 28 * 1024


class _Refresh(act.Refresh):
    # adaptive-cards-py 0.4 types `refresh.action` as a string; the schema (and Teams) want an Action.Execute object.
    action: ac.ActionExecute | None = None  # type: ignore[assignment]


@dataclass(frozen=True)
class _Limits:
    chars: int  # longest ERP text shown
    lines: int  # order lines shown
    notes: int  # policy notes and missing items each
    history: int  # most recent narrative entries


# Tried in order until the card fits; the last one keeps only what a decision cannot do without.
_LADDER = (
    _Limits(chars=2000, lines=text.TOP_LINES, notes=8, history=8),
    _Limits(chars=500, lines=text.TOP_LINES, notes=5, history=5),
    _Limits(chars=200, lines=3, notes=3, history=3),
    _Limits(chars=80, lines=1, notes=1, history=0),
    _Limits(chars=40, lines=0, notes=0, history=0),
)


def render_card(view: CardView, approver_mris: list[str] | None = None, reassign_to: list[tuple[str, str]] | None = None,
                *, key: str | None = None) -> dict:
    """The Adaptive Card for a view: facts, lines, notes, history and, while it is open, the decision buttons.

    `reassign_to` is (person key, name) for everyone the stage may move to; empty: no Reassign button. `key`, the
    outbox item's, is hidden in the card for `card_key`.
    """
    for limits in _LADDER:
        card = _card(view, approver_mris or [], limits, reassign_to or [], key)
        size = len(card.to_json().encode())
        if size <= BUDGET_BYTES:
            break
        log.info("card.degraded", extra={"request_id": view.packet.request_id, "bytes": size, "chars": limits.chars})
    return validated(card, f"request {view.packet.request_id}")


def validated(card: ac.AdaptiveCard, what: str) -> dict:
    """The card as JSON once it has a body and fits Teams' size budget; ValueError naming `what` otherwise.

    The Adaptive Card schema is not checked here: adaptive-cards-py's Teams validator walks it (anyOf over every element
    type) for about 15 ms a card, which held Teams to a few dozen cards and clicks a second (`handoff bench`). What the
    schema checks is the shape, which our renderers fix and content cannot change, so tests/cards validate every shape
    they render against the same schema (assert_valid_for_teams).
    """
    size = len(card.to_json().encode())
    if not card.body or size > BUDGET_BYTES:
        raise ValueError(f"Adaptive Card for {what} is {'empty' if not card.body else f'{size} bytes, over the {BUDGET_BYTES} budget'}")
    return json.loads(card.to_json())


def card_key(card: object) -> str | None:
    """The outbox key `render_card` hid in a card, or None for a card without one (or not ours)."""
    body = card.get("body") if isinstance(card, dict) else None
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    element_id = first.get("id")
    return element_id.removeprefix(KEY_PREFIX) if isinstance(element_id, str) and element_id.startswith(KEY_PREFIX) else None


def binding(data: object) -> tuple[str, int, int]:
    """(request id, version, stage) from a card action's data; ValueError if the client sent something else."""
    if not isinstance(data, dict):
        raise ValueError("action data is not an object")
    try:
        return str(data["r"]), int(data["v"]), int(data["s"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"action data lacks a valid request binding ({error})") from None


def _card(view: CardView, approver_mris: list[str], limits: _Limits, reassign_to: list[tuple[str, str]],
          key: str | None) -> ac.AdaptiveCard:
    data = {"r": view.packet.request_id, "v": view.packet.version, "s": view.stage}
    body = _header(view, limits, key) + _facts(view, limits) + _sections(view, limits)
    actions = (decisions(data, reassign_to) if view.actionable else []) + _link(view)
    if actions:
        body.append(ac.ActionSet(actions=actions, spacing=act.Spacing.MEDIUM))
    refresh = None
    if view.actionable:
        # Empty userIds would mean "manual refresh only"; without the field Teams refreshes chats of <= 60 members.
        users = approver_mris[:MAX_REFRESH_USERS] or None
        refresh = _Refresh(action=ac.ActionExecute(verb=REFRESH, data=data), user_ids=users)
    return ac.AdaptiveCard(
        version=VERSION,
        refresh=refresh,
        body=body,
        fallback_text=_erp(text.summary(view), limits),
    )


def _erp(value: str, limits: _Limits) -> str:
    return truncate(escape_adaptive(value), limits.chars)


def _block(value: str, **style: object) -> ac.TextBlock:
    return ac.TextBlock(text=value, wrap=True, **style)


def _header(view: CardView, limits: _Limits, key: str | None) -> list:
    record = view.packet.record
    blocks = [
        _block(f"{text.status_label(view)}: {_erp(record.reference, limits)}", size=act.FontSize.MEDIUM,
               weight=act.FontWeight.BOLDER, style=act.TextBlockStyle.HEADING, id=f"{KEY_PREFIX}{key}" if key else None),
        _block(escape_adaptive(text.stage_text(view)), is_subtle=True, spacing=act.Spacing.NONE),
        _block(escape_adaptive(view.headline)),
    ]
    if view.notice:
        blocks.append(_block(_erp(view.notice, limits), color=act.Colors.WARNING))
    if view.packet.incomplete_reason:
        blocks.append(_block(_erp(text.incomplete_text(view.packet.incomplete_reason), limits), color=act.Colors.ATTENTION))
    return blocks


def _facts(view: CardView, limits: _Limits) -> list:
    record = view.packet.record
    rows = [
        ("Vendor", record.vendor),
        ("Amount", text.money(record.amount, record.currency)),
        ("Requester", text.requester_text(record)),
        ("Unit", text.unit_text(record)),
        ("Exception", record.exception_type),
        ("Vendor history", text.vendor_history_text(record.vendor_history)),
    ]
    facts = [ac.Fact(title=title, value=_erp(value, limits)) for title, value in rows if value]
    return [ac.FactSet(facts=facts, spacing=act.Spacing.MEDIUM)]


def _listing(heading: str, items: list[str], hidden: str | None, limits: _Limits, **style: object) -> list:
    if not items and not hidden:
        return []
    blocks = [_block(heading, weight=act.FontWeight.BOLDER, spacing=act.Spacing.MEDIUM)]
    blocks += [_block(_erp(item, limits), spacing=act.Spacing.SMALL, **style) for item in items]
    if hidden:
        blocks.append(_block(hidden, is_subtle=True, spacing=act.Spacing.SMALL))
    return blocks


def _sections(view: CardView, limits: _Limits) -> list:
    packet, record = view.packet, view.packet.record
    shown, _ = text.top_lines(record.lines, min(limits.lines, text.TOP_LINES))
    lines_more = text.more(len(record.lines) - len(shown))
    if lines_more and record.url and limits.lines < text.TOP_LINES:
        lines_more += ": open the record for all of them"
    blocks = _listing(text.LINES_HEADING, [text.line_text(line, record.currency) for line in shown], lines_more, limits)
    for heading, items, noun, style in (
        (text.MISSING_HEADING, packet.missing, "item", {"color": act.Colors.ATTENTION}),
        (text.POLICY_HEADING, packet.policy_notes, "note", {}),
    ):
        blocks += _listing(heading, list(items[: limits.notes]), text.more(len(items) - limits.notes, noun), limits, **style)
    if limits.history and view.history:
        recent = list(view.history[-limits.history:])
        blocks += _listing(text.HISTORY_HEADING, recent, None, limits, is_subtle=True)
    return blocks


def execute(title: str, verb: str, data: dict, style: act.ActionStyle | None = None) -> ac.ActionExecute:
    # Teams clients without Universal Actions render the Action.Submit fallback; it arrives as a message whose
    # value carries the same binding plus the verb (AdaptiveCards universal-action-model.md, "Backward compatibility").
    legacy = ac.ActionSubmit(title=title, data={**data, "verb": verb}, style=style)
    return ac.ActionExecute(title=title, verb=verb, data=data, style=style, fallback=legacy)


def _form(input_id: str, label: str, placeholder: str, error: str, verb: str, submit: str, data: dict,
          style: act.ActionStyle | None = None) -> ac.AdaptiveCard:
    field = ac.InputText(id=input_id, label=label, placeholder=placeholder, is_multiline=True, is_required=True,
                         error_message=error, max_length=1000)
    return ac.AdaptiveCard(body=[field], actions=[execute(submit, verb, data, style)])


def decisions(data: dict, reassign_to: list[tuple[str, str]], suffix: str = "") -> list:
    """Approve, Reject (with a reason), Ask for info (with a question) and, given people, Reassign; inputs end in `suffix`."""
    reject = _form(REASON + suffix, "Why do you reject it?", "The requester will see this", "Please say why you reject it.",
                   REJECT, "Reject", data, act.ActionStyle.DESTRUCTIVE)
    ask = _form(QUESTION + suffix, "What do you need to know?", "Your question goes to the requester", "Please write your question.",
                ASK_INFO, "Send question", data)
    actions = [
        execute("Approve", APPROVE, data, act.ActionStyle.POSITIVE),
        ac.ActionShowCard(title="Reject", card=reject),
        ac.ActionShowCard(title="Ask for info", card=ask),
    ]
    if reassign_to:
        choices = [ac.InputChoice(title=name, value=key) for key, name in reassign_to]
        pick = ac.InputChoiceSet(id=ASSIGNEE + suffix, label="Who decides instead?", choices=choices, is_required=True,
                                 error_message="Pick the person who decides instead.")
        form = ac.AdaptiveCard(body=[pick], actions=[execute("Reassign", REASSIGN, data)])
        actions.append(ac.ActionShowCard(title="Reassign", card=form))
    return actions


def _link(view: CardView) -> list:
    url = view.packet.record.url
    if not url or urlsplit(url).scheme.lower() not in {"http", "https"}:
        return []  # a javascript: or file: link from the ERP never becomes a button
    return [ac.ActionOpenUrl(title=f"Open in {view.packet.record.ref.source.capitalize()}", url=url)]

