"""Block Kit for an approval card and its modals: everything an approver needs, without opening the ERP."""

from __future__ import annotations

import json

from handoff.bot.core.models import CardView

from . import text as words
from .escape import escape_mrkdwn as esc
from .escape import slack_link, truncate

# Limits from slack_sdk's validators (slack_sdk/models/blocks/*.py, models/views/__init__.py) and
# https://docs.slack.dev/reference/block-kit/blocks/section-block ("fields … 2000 characters" each).
HEADER_TEXT = 150
SECTION_TEXT = 3000
FIELD_TEXT = 2000
BUTTON_TEXT = 75
MODAL_TITLE = 24
# chat.postMessage docs advise keeping `text` to 4,000 characters; it is the notification, so far shorter is kinder.
FALLBACK_TEXT = 300
# One ERP value may not crowd out the rest of its block.
LINE_TEXT = 400
NOTE_TEXT = 500

APPROVE, REJECT, ASK_INFO, REASSIGN = "handoff.approve", "handoff.reject", "handoff.ask_info", "handoff.reassign"
REJECT_MODAL, ASK_INFO_MODAL = "handoff.reject_modal", "handoff.ask_info_modal"


def render_card(view: CardView) -> tuple[str, list[dict]]:
    """The fallback text (always set: it is the notification) and the blocks of one approval card."""
    record = view.packet.record
    blocks = [
        _header(record.reference, words.status_label(view)),
        {"type": "context", "block_id": "handoff.stage", "elements": [_mrkdwn(esc(words.stage_text(view)))]},
    ]
    if view.notice:
        blocks.append(_section("handoff.notice", f":warning: {esc(view.notice)}"))
    if view.packet.incomplete_reason:
        blocks.append(_section("handoff.incomplete", f":warning: *{words.INCOMPLETE}:* {esc(view.packet.incomplete_reason)}"))
    blocks.append(_section("handoff.headline", f"*{truncate(esc(view.headline), SECTION_TEXT - 2)}*"))
    blocks.append({"type": "section", "block_id": "handoff.facts", "fields": _facts(view)})
    shown, hidden = words.top_lines(record.lines)
    if shown:
        items = [truncate(esc(words.line_text(line, record.currency)), LINE_TEXT) for line in shown]
        blocks.append(_section("handoff.lines", _list(words.LINES_HEADING, items, words.more(hidden))))
    if view.packet.missing:
        items = [truncate(esc(m), NOTE_TEXT) for m in view.packet.missing]
        blocks.append(_section("handoff.missing", _list(words.MISSING_HEADING, items)))
    notes = view.packet.policy_notes
    if notes:
        items = [truncate(esc(n), NOTE_TEXT) for n in notes[: words.TOP_NOTES]]
        blocks.append(_section("handoff.policy", _list(words.POLICY_HEADING, items, words.more(len(notes) - words.TOP_NOTES, "note"))))
    if view.history:
        lines = "\n".join(truncate(esc(h), NOTE_TEXT) for h in view.history)
        blocks.append({"type": "context", "block_id": "handoff.history",
                       "elements": [_mrkdwn(truncate(f"*{words.HISTORY_HEADING}*\n{lines}", SECTION_TEXT))]})
    if view.actionable:
        blocks.append(_actions(view))
    return truncate(esc(words.summary(view)), FALLBACK_TEXT), blocks


def reject_modal(request_id: str, version: int, stage: int, channel: str, ts: str) -> dict:
    """The modal asking why: the reason is required and goes to the requester and the ERP."""
    return _modal(REJECT_MODAL, "Reject", "Reject", "reason_block", "reason_input", "Why do you reject it?",
                  "The requester sees this reason, and it is written to the record's history.",
                  binding(request_id, version, stage, channel=channel, ts=ts))


def ask_info_modal(request_id: str, version: int, stage: int, channel: str, ts: str) -> dict:
    """The modal for a question to the requester; it is posted in the card's thread."""
    return _modal(ASK_INFO_MODAL, "Ask for info", "Send", "question_block", "question_input", "What do you need to know?",
                  "Your question is posted in the card's thread for the requester.",
                  binding(request_id, version, stage, channel=channel, ts=ts))


def binding(request_id: str, version: int, stage: int, **extra: str) -> str:
    # What a click is bound to: the request version it was shown on, compact to stay far under 2000 (button value).
    return json.dumps({"r": request_id, "v": version, "s": stage, **extra}, separators=(",", ":"))


def _facts(view: CardView) -> list[dict]:
    record = view.packet.record
    facts = [
        (words.VENDOR, esc(record.vendor)),
        (words.AMOUNT, esc(words.money(record.amount, record.currency))),
        (words.REQUESTER, esc(words.requester_text(record))),
        (words.RECORD, _record_link(record.url, record.reference)),
        (words.UNIT, esc(words.unit_text(record) or "")),
        (words.EXCEPTION, esc(record.exception_type or "")),
        (words.VENDOR_HISTORY, esc(words.vendor_history_text(record.vendor_history))),
    ]
    return [_mrkdwn(truncate(_field(label, value), FIELD_TEXT)) for label, value in facts if value]


def _field(label: str, value: str) -> str:
    return f"*{label}*\n{value}"


def _record_link(url: str | None, reference: str) -> str:
    link = slack_link(url, reference)
    # A cut link would break its markup: an over-long URL shows the reference alone.
    return link if len(_field(words.RECORD, link)) <= FIELD_TEXT else esc(reference)


def _list(heading: str, items: list[str], more: str | None = None) -> str:
    lines = [f"*{heading}*", *(f"• {item}" for item in items)]
    if more:
        lines.append(f"_{more}_")
    return "\n".join(lines)


def _actions(view: CardView) -> dict:
    value = binding(view.packet.request_id, view.packet.version, view.stage)
    return {"type": "actions", "block_id": "handoff.actions", "elements": [
        button("Approve", APPROVE, value, "primary"),
        button("Reject", REJECT, value, "danger"),
        button("Ask for info", ASK_INFO, value),
        button("Reassign", REASSIGN, value),
    ]}


def button(label: str, action_id: str, value: str, style: str | None = None) -> dict:
    button = {"type": "button", "action_id": action_id, "text": _plain(label, BUTTON_TEXT), "value": value}
    if style:
        button["style"] = style
    return button


def _header(reference: str, status: str) -> dict:
    # Header text is plain_text only: nothing in it is parsed, so the reference needs no escaping, only cutting.
    suffix = f" · {status}"
    return {"type": "header", "block_id": "handoff.header",
            "text": _plain(truncate(reference, HEADER_TEXT - len(suffix)) + suffix, HEADER_TEXT)}


def _section(block_id: str, mrkdwn: str) -> dict:
    return {"type": "section", "block_id": block_id, "text": _mrkdwn(truncate(mrkdwn, SECTION_TEXT))}


def _mrkdwn(text: str) -> dict:
    # verbatim: Slack must not turn ERP text into links or mentions on its own (text object docs, `verbatim`).
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain(text: str, limit: int) -> dict:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def _modal(callback_id: str, title: str, submit: str, block_id: str, action_id: str, label: str, hint: str,
           private_metadata: str) -> dict:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title, MODAL_TITLE),
        "submit": _plain(submit, MODAL_TITLE),
        "close": _plain("Cancel", MODAL_TITLE),
        # view_submission carries no channel: the card's channel and ts ride here (protocols.md §1).
        "private_metadata": private_metadata,
        "blocks": [{
            "type": "input",
            "block_id": block_id,
            "label": _plain(label, 2000),
            "hint": _plain(hint, 2000),
            "optional": False,
            "element": {"type": "plain_text_input", "action_id": action_id, "multiline": True},
        }],
    }
