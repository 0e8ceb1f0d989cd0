"""infra/compose.yaml: valid Compose, Handoff waits for a healthy PostgreSQL, and no secret is written down."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

INFRA = Path(__file__).parents[2] / "infra"
# The Compose Specification's own schema, vendored with its licence (see compose-spec/README.md).
COMPOSE_SCHEMA = Path(__file__).parent / "compose-spec" / "compose-spec.json"
SECRET_WORDS = re.compile(r"PASSWORD|TOKEN|SECRET|KEY", re.IGNORECASE)


@pytest.fixture
def compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def compose_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_is_valid_compose(compose):
    assert compose_errors(compose) == []


def test_the_compose_check_has_teeth(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["handoff"]["depends_on"]["postgres"]["condition"] = "service_ready"
    broken["services"]["postgres"]["healthcheck"]["intervall"] = "5s"

    errors = compose_errors(broken)

    assert any("services/handoff/depends_on" in e for e in errors)
    assert any(e.startswith("services/postgres/healthcheck: 'intervall'") for e in errors)


def test_handoff_starts_only_once_postgres_is_healthy(compose):
    handoff, postgres = compose["services"]["handoff"], compose["services"]["postgres"]

    assert handoff["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert postgres["image"] == "postgres:16"
    assert postgres["healthcheck"]["test"][0] == "CMD-SHELL" and "pg_isready" in postgres["healthcheck"]["test"][1]


def test_state_lives_on_named_volumes(compose):
    declared = set(compose["volumes"])
    used = {
        mount.split(":")[0]
        for service in compose["services"].values()
        for mount in service.get("volumes", [])
        if not mount.startswith(".")
    }

    assert used == declared == {"handoff-data", "postgres-data"}


def test_handoff_is_built_from_the_dockerfile_and_reads_dot_env(compose):
    handoff = compose["services"]["handoff"]

    assert (INFRA / handoff["build"]["context"] / handoff["build"]["dockerfile"]).resolve() == INFRA / "Dockerfile"
    assert handoff["env_file"] == ".env"
    assert (INFRA / ".env.example").exists()


def test_plain_http_is_published_on_loopback_only(compose):
    # Handoff speaks plain HTTP; the public https endpoint is the admin's TLS proxy.
    assert compose["services"]["handoff"]["ports"] == ["127.0.0.1:3978:3978"]


def test_no_secret_is_written_in_the_compose_file(compose):
    for name, service in compose["services"].items():
        for key, value in service.get("environment", {}).items():
            literal = re.sub(r"\$\{[^}]*\}", "", str(value))
            if SECRET_WORDS.search(key):
                assert literal == "", f"{name}.{key} holds a literal value; take it from .env"
            assert not re.search(r"://[^:/]+:[^@$]+@", literal), f"{name}.{key} embeds a password in a URL"


def test_env_example_commits_no_values_and_dot_env_is_ignored():
    assignments = [line for line in (INFRA / ".env.example").read_text().splitlines() if line and not line.startswith("#")]

    assert assignments and all(re.fullmatch(r"[A-Z][A-Z0-9_]*=", line) for line in assignments)
    assert ".env" in (INFRA / ".gitignore").read_text().split()
