"""A database written by an older Handoff keeps its meaning after the upgrade."""

from __future__ import annotations

import sqlite3

from handoff.bot.core.models import RoutePlan
from handoff.state.migrations import MIGRATIONS, migrate


def test_a_stage_escalated_before_chains_counts_as_the_first_step_of_its_chain(tmp_path):
    conn = sqlite3.connect(tmp_path / "handoff.db", isolation_level=None)
    for version, script in enumerate(MIGRATIONS[:4], start=1):  # the schema as the one-step escalation left it
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;")
    conn.execute("INSERT INTO stages (request_id, stage, status, escalated_at) VALUES ('r1', 0, 'pending', '2026-11-24T09:00:00')")
    conn.execute("INSERT INTO stages (request_id, stage, status) VALUES ('r2', 0, 'pending')")

    migrate(conn)

    levels = conn.execute("SELECT request_id, escalation_level FROM stages ORDER BY request_id").fetchall()
    assert levels == [("r1", 1), ("r2", 0)], "escalated once already: the scheduler takes the chain's second step next"


def test_a_plan_stored_before_chains_loads_with_a_one_step_chain():
    stored = ('{"rule": "po-standard", "level": "global", "stages": [{"index": 0, "role": "procurement_manager", '
              '"escalate_to": "finance_director"}, {"index": 1, "role": "finance_director", "escalate_to": null}]}')

    plan = RoutePlan.model_validate_json(stored)

    assert [s.escalate_to for s in plan.stages] == [("finance_director",), ()]
