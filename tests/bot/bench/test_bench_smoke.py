"""`handoff bench --quick` still runs end to end, per backend, and writes every scenario; figures are not asserted
(no timing asserts)."""

from __future__ import annotations

import json

import pytest
from handoff.bot.cli import main
from handoff.bot.fakes.postgres import configured_database, reachable

SCENARIOS = {"ceiling", "event_to_card", "click_to_ack", "teams_event_to_card", "teams_click_to_ack", "stall_scan", "memory"}
TINY = ["bench", "--quick", "--duration", "0.2", "--stall-rows", "1000", "--memory-requests", "40"]


def _bench(tmp_path, *args: str) -> dict:
    out = tmp_path / "bench.json"
    assert main([*TINY, *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def _ran_every_scenario(run: dict) -> None:
    assert run["status"] == "measured"
    assert set(run["scenarios"]) == SCENARIOS
    for scenario in SCENARIOS - {"stall_scan", "memory"}:
        levels = run["scenarios"][scenario]["levels"]
        assert [level["concurrency"] for level in levels] == [1, 8, 32]
        assert all(level["requests"] > 0 for level in levels), levels
        # A loaded machine may let a request outlast the bench's per-request bound; any other failure is a bug.
        assert all(not level["errors"] or level["first_error"].startswith("TimeoutError") for level in levels), levels
    for scenario in ("click_to_ack", "teams_click_to_ack"):
        assert all("ack_p99_ms" in level and "decided_p99_ms" in level for level in run["scenarios"][scenario]["levels"])
    assert run["scenarios"]["memory"]["completed"] == 40
    assert run["scenarios"]["stall_scan"]["due"] == 10
    assert run["scenarios"]["stall_scan"]["tick_ms"] is not None
    assert {t["verdict"] for t in run["targets"]} <= {"holds", "misses", "n/a"}
    assert "Teams click→ack p99, c=32" in {t["target"] for t in run["targets"]}


def test_quick_bench_on_sqlite_measures_slack_and_teams_clicks_and_says_which_targets_hold(tmp_path, capsys):
    result = _bench(tmp_path, "--backends", "sqlite")

    _ran_every_scenario(result["backends"]["sqlite"])
    assert result["backends"]["postgresql"]["status"] == "skipped: not asked for (--backends)"
    printed = capsys.readouterr().out
    for line in ("sqlite     slack event→card  c=32", "sqlite     teams click→ack   c=32", "teams_event_to_card", "teams_click_to_ack", "targets:",
                 "quick run:", "postgresql: skipped"):
        assert line in printed


def test_quick_bench_on_postgresql_runs_every_scenario_in_schemas_of_its_own(tmp_path):
    url = configured_database()
    if url is None:
        pytest.skip("HANDOFF_TEST_DATABASE is not set, so there is no PostgreSQL to bench against")
    if why := reachable(url):
        pytest.skip(why)

    result = _bench(tmp_path, "--backends", "postgresql", "--database", url)

    _ran_every_scenario(result["backends"]["postgresql"])
    assert "PostgreSQL INSERT" in result["backends"]["postgresql"]["scenarios"]["ceiling"]["what"]


def test_a_postgresql_that_does_not_answer_is_skipped_with_the_reason(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main([*TINY, "--backends", "postgresql", "--database", "postgresql://postgres@127.0.0.1:1/none", "--json", str(out)])

    assert code == 0
    status = json.loads(out.read_text())["backends"]["postgresql"]["status"]
    assert status.startswith("skipped: no PostgreSQL at postgresql://postgres@127.0.0.1:1/none (")
    assert "--database" in status
    assert status in capsys.readouterr().out


def test_an_unknown_backend_is_refused_with_the_choices(capsys):
    assert main(["bench", "--backends", "sqlite,mysql"]) == 2
    assert "unknown backend mysql: choose from sqlite, postgresql" in capsys.readouterr().err
