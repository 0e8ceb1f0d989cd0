"""infra/systemd/handoff.service: a unit systemd accepts, running Handoff unprivileged on SQLite in its state dir."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parents[2] / "infra" / "systemd" / "handoff.service"


def unit_settings() -> dict[str, list[str]]:
    """Key -> every value it is given in the unit (systemd allows repeats, e.g. SystemCallFilter)."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine")
def test_systemd_accepts_the_unit(tmp_path):
    # verify checks that ExecStart exists; point it at this interpreter instead of /opt/handoff.
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/handoff/bin/handoff", sys.executable))

    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)

    # verify exits 0 even for unknown keys and bad values; it only says so on stderr.
    assert (run.returncode, run.stdout + run.stderr) == (0, "")


def test_runs_handoff_serve_as_its_own_user_and_restarts_on_failure():
    unit = unit_settings()

    assert unit["User"] == ["handoff"]
    assert unit["ExecStart"] == ["/opt/handoff/bin/handoff serve"]
    assert unit["Restart"] == ["on-failure"]


def test_secrets_come_from_an_environment_file():
    unit = unit_settings()

    assert unit["EnvironmentFile"] == ["/etc/handoff/handoff.env"]
    assert not any(key in value for value in unit.get("Environment", []) for key in ("TOKEN", "SECRET", "PASSWORD"))


def test_sqlite_database_lives_in_the_state_directory():
    unit = unit_settings()

    assert unit["StateDirectory"] == ["handoff"]
    assert "HANDOFF_DATABASE=/var/lib/handoff/handoff.db" in unit["Environment"]


def test_hardened():
    unit = unit_settings()

    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert unit[key] == [value], key
