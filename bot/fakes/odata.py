"""The small part of OData query syntax the Dataverse fake understands: $select, $expand, $orderby, eq/ne/and filters."""

from __future__ import annotations

import re
import uuid


class QueryError(ValueError):
    """A request the fake (or Dataverse) refuses with a 400; the message and code are the ones the API would give."""

    def __init__(self, message: str, code: str = "0x0") -> None:
        super().__init__(message)
        self.code = code


_CLAUSE = re.compile(r"^\s*([A-Za-z_][\w]*)\s+(eq|ne)\s+(.+?)\s*$")


def parse_select(value: str | None) -> list[str] | None:
    return [column.strip() for column in value.split(",") if column.strip()] if value else None


def parse_expand(value: str | None) -> dict[str, list[str] | None]:
    """`nav($select=a,b),other` -> {"nav": ["a", "b"], "other": None}."""
    expanded: dict[str, list[str] | None] = {}
    for item in _split_top_level(value or ""):
        match = re.fullmatch(r"\s*(\w+)\s*(?:\((.*)\))?\s*", item)
        if not match:
            raise QueryError(f"The query parameter $expand has an invalid value '{item}'.")
        nav, options = match.groups()
        select = None
        for option in (options or "").split(";"):
            if option.strip().startswith("$select="):
                select = parse_select(option.strip().removeprefix("$select="))
            elif option.strip():
                raise QueryError(f"The fake Dataverse supports only $select inside $expand, not '{option.strip()}'.")
        expanded[nav] = select
    return expanded


def parse_filter(value: str | None) -> list[tuple[str, str, object]]:
    """`a eq 1 and _b_value ne <guid> and c eq 'x'` -> [(column, op, value)]; anything richer is refused."""
    if not value:
        return []
    clauses = []
    for part in re.split(r"\s+and\s+", value.strip()):
        match = _CLAUSE.match(part)
        if not match:
            raise QueryError(f"The fake Dataverse supports only 'column eq|ne value' joined by 'and' in $filter, not '{part}'.")
        clauses.append((match.group(1), match.group(2), _literal(match.group(3))))
    return clauses


def matches(row: dict, clauses: list[tuple[str, str, object]]) -> bool:
    return all((row.get(column) == value) == (op == "eq") for column, op, value in clauses)


def parse_orderby(value: str | None) -> tuple[str, bool] | None:
    """`modifiedon desc` -> ("modifiedon", True); one column is all the fake sorts by."""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\w+)(?:\s+(asc|desc))?\s*", value)
    if not match:
        raise QueryError(f"The fake Dataverse sorts by one column only, not '{value}'.")
    return match.group(1), match.group(2) == "desc"


def _literal(text: str) -> object:
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        pass
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"The fake Dataverse cannot read the $filter value '{text}'.") from None


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    if current.strip():
        parts.append(current)
    return parts
