"""Every HANDOFF_* variable the deployment files set is one Handoff reads: a typo would be silently ignored."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from handoff.manifest.commands import SLACK_OPTIONS, TEAMS_OPTIONS

INFRA = Path(__file__).parents[2] / "infra"
FILES = ["Dockerfile", "compose.yaml", ".env.example", "systemd/handoff.service", *(f"k8s/{p.name}" for p in (INFRA / "k8s").glob("*.yaml"))]


def names_in_infra() -> list[str]:
    found = {name for file in FILES for name in re.findall(r"\bHANDOFF_[A-Z0-9_]+", (INFRA / file).read_text())}
    return sorted(found)


def read_by_settings(name: str) -> bool:
    try:
        from handoff.bot.config import Settings
    except ImportError as error:
        pytest.skip(f"handoff.bot.config does not import yet ({error})")
    model: type[BaseModel] | None = Settings
    for part in name.removeprefix("HANDOFF_").lower().split("__"):
        field = model.model_fields.get(part) if model else None
        if field is None:
            return False
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return True


@pytest.mark.parametrize("name", names_in_infra())
def test_variable_is_read_by_handoff(name):
    manifest_variables = {option.env for option in (*TEAMS_OPTIONS, *SLACK_OPTIONS)}

    assert name in manifest_variables or read_by_settings(name), f"nothing in Handoff reads {name}"
