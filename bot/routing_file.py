"""Load the routing TOML: parse, validate, and turn every problem into a ConfigError naming file:line and the fix."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from handoff.bot.core.errors import ConfigError
from handoff.bot.core.route import RoutingConfig
from handoff.bot.core.route_config import LEVELS, Loc, RoutingInvalid

# A table header line: [people.dana], [[rules]], [[rules.stages]], ["quoted".key] — with an optional comment.
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)')
_SYNTAX_LINE = re.compile(r"at line (\d+)")


def _key_path(text: str) -> tuple[str, ...]:
    return tuple(next(group for group in match.groups() if group is not None) for match in _KEY_PART.finditer(text))


class _Lines:
    """Where tables and keys sit in the raw text, because tomllib keeps no positions for values."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: list[tuple[int, tuple[str, ...]]] = []  # (1-based line, key path)
        for number, line in enumerate(self.lines, 1):
            match = _HEADER.match(line)
            if match:
                self.headers.append((number, _key_path(match.group(2))))

    def line_of(self, loc: Loc) -> int | None:
        """The line of the table (and key, when it can be found) a validation location points at."""
        if not loc:
            return None
        head, rest = loc[0], loc[1:]
        if head == "rules" and rest and isinstance(rest[0], int):
            return self._in_rule(rest[0], rest[1:])
        if rest and isinstance(rest[0], str):
            table = self._table((str(head), rest[0]), 0, len(self.headers))
            if table is not None:
                return self._key_line(table, rest[1:])
        table = self._table((str(head),), 0, len(self.headers))
        if table is not None:
            return self._key_line(table, rest)
        return self._find_key(0, self.headers[0][0] - 1 if self.headers else len(self.lines), str(head))

    def _in_rule(self, index: int, rest: Loc) -> int | None:
        rules = [h for h, (_, path) in enumerate(self.headers) if path == ("rules",)]
        if index >= len(rules):
            return None
        start = rules[index]
        stop = rules[index + 1] if index + 1 < len(rules) else len(self.headers)
        if rest[:1] == ("stages",) and len(rest) > 1 and isinstance(rest[1], int):
            stages = [h for h in range(start + 1, stop) if self.headers[h][1] == ("rules", "stages")]
            if rest[1] < len(stages):
                return self._key_line(stages[rest[1]], rest[2:])
        return self._key_line(start, rest)

    def _table(self, path: tuple[str, ...], start: int, stop: int) -> int | None:
        return next((h for h in range(start, stop) if self.headers[h][1] == path), None)

    def _key_line(self, header: int, rest: Loc) -> int:
        number = self.headers[header][0]
        if not rest or not isinstance(rest[0], str):
            return number
        stop = self.headers[header + 1][0] - 1 if header + 1 < len(self.headers) else len(self.lines)
        return self._find_key(number, stop, rest[0]) or number

    def _find_key(self, after: int, stop: int, key: str) -> int | None:
        pattern = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*[=.]""")
        return next((n for n in range(after + 1, stop + 1) if pattern.match(self.lines[n - 1])), None)


def _table_label(loc: Loc, data: dict[str, Any]) -> tuple[str, Loc]:
    """How a person would name the table a location is in, and the rest of the location."""
    head, rest = loc[0], loc[1:]
    if head == "rules" and rest and isinstance(rest[0], int):
        raw = data.get("rules", [])
        name = raw[rest[0]].get("name") if rest[0] < len(raw) and isinstance(raw[rest[0]], dict) else None
        label = f"rule '{name}'" if name else f"rule #{rest[0] + 1}"
        rest = rest[1:]
        if rest[:1] == ("stages",) and len(rest) > 1 and isinstance(rest[1], int):
            label, rest = f"{label} stage {rest[1] + 1}", rest[2:]
        return label, rest
    if head in ("people", "roles", "channels") and rest:
        return f"[{head}.{rest[0]}]", rest[1:]
    return f"[{head}]", rest


def _field_problem(error: dict[str, Any], data: dict[str, Any], where: str) -> str:
    loc, kind = tuple(error["loc"]), error["type"]
    if loc == ("rules",) and kind in ("missing", "too_short"):
        return f"{where}: the file has no [[rules]], so no request could be routed. Fix: add at least one [[rules]] table (see bot/samples/routing.toml)."
    table, rest = _table_label(loc, data)
    key = next((part for part in rest if isinstance(part, str)), None)
    if kind == "missing":
        return f"{where}: {table} is missing {key}. Fix: add {key} = ... to it."
    if kind == "extra_forbidden":
        return f"{where}: {table} has an unknown key '{key}'. Fix: remove it or correct its spelling."
    field = f"{table} {key}" if key else table
    if kind in ("literal_error", "enum"):
        return f"{where}: {field} is {error['input']!r}, which is not allowed. Fix: use {error['ctx']['expected']}."
    if kind == "value_error":
        return f"{where}: {field}: {error['ctx']['error']}."
    return f"{where}: {field} is {error['input']!r}: {error['msg']}. Fix: correct the value."


def _read(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"Routing file {path} not found. Fix: pass the path of your routing TOML, or copy bot/samples/routing.toml there."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Routing file {path} cannot be read ({error}). Fix: check its permissions and that it is UTF-8.") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = _SYNTAX_LINE.search(str(error))
        where = f"{path}:{found.group(1)}" if found else str(path)
        raise ConfigError(f"{where}: TOML syntax error: {error}. Fix: correct the syntax there (see https://toml.io/en/v1.0.0).") from None


def load_routing(path: Path) -> RoutingConfig:
    """The validated routing config in `path`; raises ConfigError naming file:line and the fix for each problem."""
    text, data = _read(path)
    lines = _Lines(text)

    def locate(loc: Loc) -> str:
        number = lines.line_of(loc)
        return f"{path}:{number}" if number else str(path)

    try:
        return RoutingConfig.model_validate(data, context={"locate": locate})
    except ValidationError as error:
        raise RoutingInvalid([_field_problem(e, data, locate(tuple(e["loc"]))) for e in error.errors()]) from None


def check(path: Path) -> tuple[bool, list[str]]:
    """For `handoff routes check`: (True, a summary of the config) or (False, one line per problem)."""
    try:
        config = load_routing(Path(path))
    except RoutingInvalid as error:
        return False, error.problems
    except ConfigError as error:
        return False, [str(error)]
    by_level = {level: [rule.name for rule in config.rules if rule.level == level] for level in LEVELS}
    return True, [
        f"{path}: OK",
        f"People ({len(config.people)}): {', '.join(config.people) or 'none'}",
        f"Roles ({len(config.roles)}): " + "; ".join(f"{name} ({', '.join(role.members)})" for name, role in config.roles.items()),
        f"Rules ({len(config.rules)}): " + "; ".join(f"{level}: {', '.join(names) or 'none'}" for level, names in by_level.items()),
        f"Channels ({len(config.channels)}): " + ", ".join(config.channels),
        f"Defaults: platform {config.defaults.platform}, ops channel '{config.defaults.ops_channel}', SLA {config.defaults.sla_hours:g} h",
    ]
