"""A card as the approver sees it, in plain HTML: Block Kit or Adaptive Card JSON, buttons shown disabled."""

from __future__ import annotations

import html
import re

from .page import h

# Slack mrkdwn links: <url|label> or <url>; https://api.slack.com/reference/surfaces/formatting#linking-urls
_SLACK_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"\*([^*\n]+)\*")
_ITALIC = re.compile(r"(?<![\w])_([^_\n]+)_(?![\w])")


def _mrkdwn_piece(text: str) -> str:
    # Slack escapes only &, < and > (same entities as HTML): unescape, then escape for HTML ourselves.
    safe = h(html.unescape(text))
    safe = _BOLD.sub(r"<strong>\1</strong>", safe)
    return _ITALIC.sub(r"<em>\1</em>", safe).replace("\n", "<br>")


def mrkdwn(text: str) -> str:
    out, last = [], 0
    for match in _SLACK_LINK.finditer(text):
        out.append(_mrkdwn_piece(text[last:match.start()]))
        url, label = html.unescape(match.group(1)), match.group(2)
        shown = _mrkdwn_piece(label) if label is not None else h(url)
        out.append(f'<a href="{h(url)}" rel="noreferrer">{shown}</a>' if url.startswith(("http://", "https://")) else shown)
        last = match.end()
    out.append(_mrkdwn_piece(text[last:]))
    return "".join(out)


def _text(obj: dict) -> str:
    return mrkdwn(obj.get("text", "")) if obj.get("type") == "mrkdwn" else h(obj.get("text", ""))


def _button(title: str) -> str:
    return f'<button disabled title="Shown as the approver sees it; decide in chat">{h(title)}</button>'


def blockkit(blocks: list[dict]) -> str:
    """Block Kit blocks (https://api.slack.com/reference/block-kit/blocks): header, section, context, actions, divider."""
    out = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            out.append(f"<h3>{_text(block['text'])}</h3>")
        elif kind == "section":
            if "text" in block:
                out.append(f"<p>{_text(block['text'])}</p>")
            if block.get("fields"):
                out.append('<div class="fields">' + "".join(f"<div>{_text(f)}</div>" for f in block["fields"]) + "</div>")
        elif kind == "context":
            out.append('<p class="ctx">' + " ".join(_text(e) for e in block.get("elements", []) if "text" in e) + "</p>")
        elif kind == "actions":
            out.append("<p>" + " ".join(_button(e.get("text", {}).get("text", "")) for e in block.get("elements", [])) + "</p>")
        elif kind == "divider":
            out.append("<hr>")
    return '<div class="card" data-platform="slack">' + "".join(out) + "</div>"


def _adaptive_text(text: str) -> str:
    # Our renderer backslash-escapes markdown so it shows as typed; undo that for plain HTML.
    return h(re.sub(r"\\([\\`*_{}\[\]()#+\-.!>~|])", r"\1", text).replace("\u200b", ""))


def _adaptive(element: dict) -> str:
    """Adaptive Card elements (https://adaptivecards.io/explorer/): TextBlock, FactSet, containers, actions, inputs."""
    kind = element.get("type")
    if kind == "TextBlock":
        tag = "h3" if element.get("size") in ("Large", "ExtraLarge") else ("strong" if element.get("weight") == "Bolder" else "span")
        return f"<p><{tag}>{_adaptive_text(element.get('text', ''))}</{tag}></p>"
    if kind == "FactSet":
        return '<div class="fields">' + "".join(
            f"<div><strong>{_adaptive_text(f.get('title', ''))}</strong><br>{_adaptive_text(f.get('value', ''))}</div>"
            for f in element.get("facts", [])) + "</div>"
    if kind == "ActionSet":
        return "<p>" + " ".join(_button(a.get("title", "")) for a in element.get("actions", [])) + "</p>"
    if kind and kind.startswith("Input."):
        return f'<p><input disabled placeholder="{h(element.get("placeholder", element.get("label", "")))}"></p>'
    children = element.get("items") or [c for column in element.get("columns", []) for c in column.get("items", [])]
    return "".join(_adaptive(child) for child in children)


def adaptive(card: dict) -> str:
    body = "".join(_adaptive(e) for e in card.get("body", []))
    actions = card.get("actions") or []
    if actions:
        body += "<p>" + " ".join(_button(a.get("title", "")) for a in actions) + "</p>"
    return '<div class="card" data-platform="teams">' + body + "</div>"
