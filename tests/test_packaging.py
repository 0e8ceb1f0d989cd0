"""pyproject lists every code folder as a subpackage of `handoff`; a new folder left out would vanish from a wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = {"bot", "cards", "connectors", "state", "manifest"}


def test_every_code_folder_is_a_listed_subpackage():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = set()
    for top in TOP:
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT).parts
            on_disk.add(".".join(("handoff", *parts)))
    assert listed == on_disk
    assert set(config["tool"]["setuptools"]["package-dir"]) == {f"handoff.{t}" for t in TOP}
