"""ERP text must reach chat as typed: no mentions, links or formatting it did not ask for."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from handoff.cards.escape import adaptive_message, escape_adaptive, escape_mrkdwn, mrkdwn_message, slack_link, truncate

# Adaptive Card TextBlocks render a CommonMark subset; rendering with a CommonMark parser shows what a client would.
commonmark = MarkdownIt("commonmark")


def rendered(markdown: str) -> str:
    return commonmark.render(markdown)


@pytest.mark.parametrize(
    "hostile",
    ["<!channel>", "<!here|here>", "<@U0DANA>", "<https://evil.example|click>", "<#C0PROC>", "<!date^0^{date}|x>"],
)
def test_slack_control_sequences_render_as_text(hostile):
    escaped = escape_mrkdwn(hostile)

    assert "<" not in escaped and ">" not in escaped
    assert escaped.startswith("&lt;") and escaped.endswith("&gt;")


def test_ampersands_are_escaped_once():
    assert escape_mrkdwn("AT&T &amp; Sons") == "AT&amp;T &amp;amp; Sons"


@pytest.mark.parametrize("marked", ["*bold*", "_italic_", "~struck~", "`code`", "```block```"])
def test_slack_formatting_markers_are_neutralised(marked):
    escaped = escape_mrkdwn(marked)

    assert not set("*_~`") & set(escaped)
    assert len(escaped) == len(marked)  # look-alikes, one for one: nothing dropped


def test_markers_inside_words_are_left_as_the_erp_spells_them():
    assert escape_mrkdwn("Acme_Supplies_Ltd 2*3") == "Acme_Supplies_Ltd 2*3"


def test_a_leading_quote_cannot_become_a_slack_blockquote():
    escaped = escape_mrkdwn("> quoted\nplain\n  > again")

    assert [line.lstrip(" ")[:5] for line in escaped.splitlines()] == ["\u00ad&gt;", "plain", "\u00ad&gt;"]


def test_our_code_spans_stay_code_and_cannot_carry_a_mention_while_the_rest_is_escaped():
    said = mrkdwn_message("Next: `/handoff status <!channel>` for *Acme* and a stray ` backtick")
    assert said == "Next: `/handoff status &lt;!channel&gt;` for \u2217Acme\u2217 and a stray \u02cb backtick"


def test_teams_message_code_spans_stay_code_while_the_rest_renders_as_typed():
    said = adaptive_message("Next: `/handoff status {{DATE(x)}}` for *Acme* [x](https://evil.example) and a stray ` backtick")
    html = rendered(said)
    assert "<code>/handoff status {\u200b{DATE(x)}}</code>" in html, "code, and no date function even inside it"
    assert "for *Acme* [x](https://evil.example) and a stray ` backtick" in html
    assert "<em>" not in html and "<a " not in html


def test_slack_link_keeps_the_url_whole_and_the_label_inert():
    assert slack_link("https://erp.example.com/po?id=4&x=<1>|2", "<!channel>") == (
        "<https://erp.example.com/po?id=4&amp;x=%3C1%3E%7C2|&lt;!channel&gt;>"
    )


@pytest.mark.parametrize("url", [None, "", "javascript:alert(1)", "slack://open"])
def test_slack_link_without_a_web_url_is_just_the_label(url):
    assert slack_link(url, "P00042") == "P00042"


@pytest.mark.parametrize(
    "hostile",
    ["[click](http://evil.example)", "**bold** and _italic_", "<http://evil.example>", "![pixel](http://evil.example/p.png)"],
)
def test_adaptive_inline_markdown_renders_as_text(hostile):
    html = rendered(escape_adaptive(hostile))

    assert html == f"<p>{hostile.replace('<', '&lt;').replace('>', '&gt;')}</p>\n"


@pytest.mark.parametrize("line", ["- item", "+ item", "# Heading", "1. first", "2) second", "> quote"])
def test_adaptive_line_starts_do_not_make_lists_headings_or_quotes(line):
    html = rendered(escape_adaptive(f"{line}\n{line}"))

    assert html.startswith("<p>") and "<li>" not in html and "<h1>" not in html and "<blockquote>" not in html


def test_adaptive_date_functions_are_not_expanded():
    escaped = escape_adaptive("{{DATE(2017-02-14T06:00:00Z, SHORT)}}")

    assert "{{" not in escaped


def test_adaptive_date_functions_behind_more_braces_are_not_expanded():
    # Replacing "{{" once per pair left "{{" between the pairs of "{{{{" (found by tests/fuzz/parsers_harness.py).
    escaped = escape_adaptive("{{{{DATE(2017-02-14T06:00:00Z, SHORT)}}")

    assert "{{" not in escaped and escaped.replace("\u200b", "") == "{{{{DATE\\(2017-02-14T06:00:00Z, SHORT\\)}}"


def test_adaptive_backslashes_survive():
    assert rendered(escape_adaptive(r"C:\temp\*")) == "<p>C:\\temp\\*</p>\n"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("abcdefghij", 5, "abcd…"),
        ("AT&amp;T Corporation", 6, "AT…"),  # never "AT&am…"
        ("ab\\*cd", 4, "ab…"),  # never a dangling backslash that would escape the ellipsis
    ],
)
def test_truncate_never_cuts_through_an_escape(text, limit, expected):
    assert truncate(text, limit) == expected
