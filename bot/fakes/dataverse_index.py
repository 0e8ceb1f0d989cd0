"""Rows by lookup value for the Dataverse fake: `_x_value eq <id>` filters without scanning the table each time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping


class LookupIndex:
    """Per (table, lookup column), its rows grouped by value, in table order.

    A wave of thousands of write-backs re-reads each record's lines, notes and the vendor's other rows: scanning every
    table on every read made the fake, not Handoff, the slow part. Rows are the fake's own dicts, changed in place, so
    an index holds until a row is added or deleted or one of its indexed columns is set; `changed` then drops it.
    """

    def __init__(self) -> None:
        self._built: dict[tuple[str, str], dict[object, list[dict]]] = {}

    def rows(self, table: Mapping[str, dict], entity_set: str, column: str, value: object) -> list[dict]:
        """The rows of `table` whose `column` equals `value`."""
        grouped = self._built.get((entity_set, column))
        if grouped is None:
            grouped = self._built[(entity_set, column)] = defaultdict(list)
            for row in table.values():
                grouped[row.get(column)].append(row)
        return grouped.get(value, [])

    def changed(self, entity_set: str, columns: Collection[str] | None = None) -> None:
        """Rows of `entity_set` were added or deleted (no `columns`), or had `columns` set."""
        for key in [key for key in self._built if key[0] == entity_set and (columns is None or key[1] in columns)]:
            del self._built[key]
