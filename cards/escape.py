"""Make text from the ERP (or from people) inert before it goes into chat markup: Slack mrkdwn and Adaptive Card markdown."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

# Slack: `&`, `<` and `>` are the only control characters, escaped as HTML entities and nothing else
# (https://docs.slack.dev/messaging/formatting-message-text#escaping). That alone makes `<!channel>`,
# `<@U123>`, `<!date^…>` and `<https://evil|click>` render as the literal text.
_SLACK_CONTROL = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})

# Slack has no escape for *, _, ~ and `: swap them for look-alikes, as jsx-slack does for link text
# (yhatt/jsx-slack docs/about-escape-and-exact-mode.md). A *, _ or ~ between two letters or digits never opens
# or closes formatting (same doc, "exact mode"), so "Acme_Supplies_Ltd" stays exactly as the ERP spells it.
_SLACK_LOOKALIKE = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
_SLACK_MARKER = re.compile(r"`|(?<![^\W_])[*_~]|[*_~](?![^\W_])")
# A line starting with `&gt;` (or the full-width `＞`) is still a quote after escaping; an invisible soft hyphen
# in front breaks that (same jsx-slack doc, "Leading quotes").
_SLACK_QUOTE = re.compile(r"^(\s*)(&gt;|\uff1e)", re.MULTILINE)

# URL characters that would end or split Slack's `<url|label>` syntax.
_SLACK_URL = str.maketrans({"&": "&amp;", "<": "%3C", ">": "%3E", "|": "%7C", " ": "%20"})

# Adaptive Card TextBlocks render a CommonMark subset: **bold**, _italic_, lists and [title](url)
# (https://learn.microsoft.com/adaptive-cards/authoring-cards/text-features). CommonMark lets any ASCII punctuation
# be backslash-escaped (spec §2.4); the shared renderers honour it (microsoft/AdaptiveCards #1051, and the mobile
# fix in microsoft/Teams-AdaptiveCards-Mobile #58).
_ADAPTIVE_INLINE = re.compile(r"([\\*_\[\]()~`<>!])")
_ADAPTIVE_BLOCK = re.compile(r"^(\s*)([-+#])", re.MULTILINE)
_ADAPTIVE_ORDERED = re.compile(r"^(\s*\d+)([.)])", re.MULTILINE)
_BRACE_PAIR = re.compile(r"\{(?=\{)")


def escape_mrkdwn(text: str) -> str:
    """Text that Slack shows as typed: no mentions, links, formatting or quotes."""
    escaped = text.translate(_SLACK_CONTROL)
    escaped = _SLACK_MARKER.sub(lambda m: _SLACK_LOOKALIKE[m.group()], escaped)
    return _SLACK_QUOTE.sub("\\1\u00ad\\2", escaped)


# A code span in Handoff's own message text: a command to type, such as `/handoff status P00042`.
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def _keep_code_spans(text: str, escape: Callable[[str], str], escape_code: Callable[[str], str]) -> str:
    """Handoff's own message text with its `code` spans kept as code: `escape` for the prose, `escape_code` inside spans.

    Only the template may hold backticks: values from the ERP or from people are made inert where the text is composed
    (core.view.inert), so every backtick left here is ours.
    """
    parts = _CODE_SPAN.split(text)
    # split() alternates text outside spans (even indexes) with span contents (odd indexes).
    return "".join(f"`{escape_code(part)}`" if i % 2 else escape(part) for i, part in enumerate(parts))


def mrkdwn_message(text: str) -> str:
    """Handoff's own message text for Slack: its `code` spans stay code, everything else is shown as typed.

    `&`, `<` and `>` are escaped inside spans too, since Slack reads `<!channel>` before it reads code.
    """
    return _keep_code_spans(text, escape_mrkdwn, lambda code: code.translate(_SLACK_CONTROL))


def adaptive_message(text: str) -> str:
    """Handoff's own message text for Teams markdown: its `code` spans stay code, everything else is shown as typed.

    CommonMark shows a code span's content literally (spec §6.1), so a backslash there would show; only the
    `{{DATE(…)}}` braces, expanded before markdown, are split inside spans too.
    """
    return _keep_code_spans(text, escape_adaptive, _split_brace_pairs)


def slack_link(url: str | None, label: str) -> str:
    """A mrkdwn link to an http(s) URL with an escaped label; just the label when the URL is anything else."""
    if not url or urlsplit(url).scheme.lower() not in {"http", "https"}:
        return escape_mrkdwn(label)
    return f"<{url.translate(_SLACK_URL)}|{escape_mrkdwn(label)}>"


def escape_adaptive(text: str) -> str:
    """Text that an Adaptive Card TextBlock shows as typed: no links, emphasis, lists or date functions."""
    escaped = _ADAPTIVE_INLINE.sub(r"\\\1", text)
    escaped = _ADAPTIVE_ORDERED.sub(r"\1\\\2", escaped)
    escaped = _ADAPTIVE_BLOCK.sub(r"\1\\\2", escaped)
    # {{DATE(…)}} and {{TIME(…)}} are expanded before markdown, so a backslash would not stop them: split the braces.
    return _split_brace_pairs(escaped)


def _split_brace_pairs(text: str) -> str:
    # Every pair of braces: a plain replace of "{{" leaves "{{" in "{{{{" (found by tests/fuzz/parsers_harness.py).
    return _BRACE_PAIR.sub("{\u200b", text)


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis, never through an escape (`&amp;`, `\\*`)."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    cut = re.sub(r"&[a-z]*$", "", cut)  # a cut `&amp;` would show as "&am"
    if (len(cut) - len(cut.rstrip("\\"))) % 2:
        cut = cut[:-1]  # a lone trailing backslash would escape the ellipsis
    return cut + "…"
