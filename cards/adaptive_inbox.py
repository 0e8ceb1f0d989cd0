"""A person's working inbox as one Adaptive Card: each waiting request with its own buttons, and Approve all."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from adaptive_cards import card as ac
from adaptive_cards import types as act

from .adaptive import BUDGET_BYTES, BULK_APPROVE, VERSION, decisions, execute, validated
from .escape import escape_adaptive, truncate

# Marks the card as the inbox: a click on it is answered with the inbox again, not with the one request's card.
INBOX_KEY = "inbox"


@dataclass(frozen=True)
class InboxItem:
    """One waiting request: its button binding, a one-line summary, its record link, whom it may be reassigned to."""

    request_id: str
    version: int
    stage: int
    summary: str
    url: str | None = None
    reassign_to: tuple[tuple[str, str], ...] = ()

    @property
    def data(self) -> dict:
        return {"r": self.request_id, "v": self.version, "s": self.stage, INBOX_KEY: 1}


def render_inbox(title: str, items: list[InboxItem], bulk: list[list], notice: list[str] | None = None) -> dict:
    """The inbox card; `bulk` is the [request, version, stage] triples Approve all approves (none: no such button).

    Items that would take the card past Teams' size budget are left for the next ask, and the card says so.
    """
    for count in range(len(items), 0, -1):
        shown = {item.request_id for item in items[:count]}
        card = _card(title, items[:count], [b for b in bulk if b[0] in shown], notice, hidden=len(items) - count)
        if len(card.to_json().encode()) <= BUDGET_BYTES:
            break
    else:
        card = _card(title, [], [], notice, hidden=len(items))
    return validated(card, f"the inbox ({len(items)} items)")


def _card(title: str, items: list[InboxItem], bulk: list[list], notice: list[str] | None, hidden: int) -> ac.AdaptiveCard:
    body: list = [ac.TextBlock(text=escape_adaptive(title), wrap=True, weight=act.FontWeight.BOLDER, size=act.FontSize.MEDIUM,
                               style=act.TextBlockStyle.HEADING)]
    # The result of the last click (one line per item for Approve all), shown above the refreshed list.
    body += [ac.TextBlock(text=escape_adaptive(line), wrap=True, spacing=act.Spacing.SMALL, color=act.Colors.ACCENT)
             for line in notice or []]
    for item in items:
        actions = decisions(item.data, list(item.reassign_to), suffix=f".{item.request_id}")
        if item.url and urlsplit(item.url).scheme.lower() in {"http", "https"}:
            actions.append(ac.ActionOpenUrl(title="Open record", url=item.url))
        body.append(ac.Container(separator=True, spacing=act.Spacing.MEDIUM, items=[
            ac.TextBlock(text=escape_adaptive(truncate(item.summary, 500)), wrap=True),
            ac.ActionSet(actions=actions),
        ]))
    if hidden:
        body.append(ac.TextBlock(text=f"{hidden} more wait below these; decide these, then ask `pending` again.", wrap=True,
                                 is_subtle=True, spacing=act.Spacing.MEDIUM))
    if len(bulk) > 1:
        bulk_action = execute(f"Approve all {len(bulk)}", BULK_APPROVE, {"items": bulk, INBOX_KEY: 1}, act.ActionStyle.POSITIVE)
        body.append(ac.ActionSet(actions=[bulk_action], spacing=act.Spacing.LARGE))
    return ac.AdaptiveCard(version=VERSION, body=body, fallback_text=escape_adaptive(title))

