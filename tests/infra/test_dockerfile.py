"""infra/Dockerfile: slim Python 3.11, a non-root user, `handoff serve` on 3978, healthy only when /healthz answers."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "infra" / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


@pytest.fixture
def runtime() -> list[tuple[str, str]]:
    """The instructions of the last stage: the image that ships."""
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def arguments(stage: list[tuple[str, str]], op: str) -> list[str]:
    return [args for name, args in stage if name == op]


def test_every_stage_is_python_311_slim():
    assert {args.split()[0] for op, args in instructions() if op == "FROM"} == {"python:3.11-slim"}


def test_the_project_is_installed_with_pip():
    assert any("pip install ." in args for op, args in instructions() if op == "RUN")


def test_runs_as_a_non_root_user(runtime):
    [user] = arguments(runtime, "USER")

    assert user.split(":")[0] not in {"0", "root"}
    assert re.search(rf"useradd .*--uid {user.split(':')[0]}\b", " ".join(arguments(runtime, "RUN")))


def test_starts_handoff_serve_on_3978(runtime):
    [entrypoint], [cmd] = arguments(runtime, "ENTRYPOINT"), arguments(runtime, "CMD")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert json.loads(entrypoint) + json.loads(cmd) == ["handoff", "serve"]
    assert "handoff" in scripts
    assert arguments(runtime, "EXPOSE") == ["3978"]
    env = " ".join(arguments(runtime, "ENV"))
    # Settings default to 127.0.0.1, which nothing outside the container could reach.
    assert "HANDOFF_HOST=0.0.0.0" in env and "HANDOFF_PORT=3978" in env


def test_healthcheck_asks_healthz(runtime):
    [check] = arguments(runtime, "HEALTHCHECK")

    assert "http://127.0.0.1:3978/healthz" in check


def test_build_context_ignores_secrets_and_local_state():
    ignored = (ROOT / "infra" / "Dockerfile.dockerignore").read_text().split()

    assert {"**/.env", "**/*.db", ".git"} <= set(ignored)
