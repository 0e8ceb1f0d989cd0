"""The `handoff` command as an admin uses it: log verify/export, routes check/explain, demo."""

from __future__ import annotations

import json
from pathlib import Path

from handoff.bot.cli import main
from handoff.bot.demo import run_demo
from handoff.bot.fakes.stack import SAMPLE_ROUTING
from handoff.state.store import Store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "odoo" / "webhook_purchase_order.json"


def _log_some(path: Path, clock) -> None:
    store = Store(path, clock)
    for verb in ("approve", "reject", "approve"):
        store.log("r-1", "DecisionRecorded", "dana", {"stage": 0, "verb": verb})
    store.close()


def test_log_verify_passes_then_names_the_tampered_entry(tmp_path, clock, capsys):
    db = tmp_path / "handoff.db"
    _log_some(db, clock)
    assert main(["log", "verify", "--database", str(db)]) == 0
    assert "Decision log OK: 3 entries" in capsys.readouterr().out

    store = Store(db, clock)
    store.conn.execute("DROP TRIGGER decision_log_no_update")
    store.conn.execute("""UPDATE decision_log SET actor = 'mallory' WHERE seq = 2""")
    store.close()
    assert main(["log", "verify", "--database", str(db)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "entry 2 (DecisionRecorded, request r-1) was edited after it was written" in out


def test_log_export_writes_jsonl_and_csv(tmp_path, clock, capsys):
    db = tmp_path / "handoff.db"
    _log_some(db, clock)
    assert main(["log", "export", "--format", "jsonl", "--database", str(db)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["body"]["verb"] for r in rows] == ["approve", "reject", "approve"]
    out = tmp_path / "log.csv"
    assert main(["log", "export", "--format", "csv", "--database", str(db), "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0].startswith("seq,at,request_id,event")


def test_log_verify_without_a_database_says_how_to_point_at_one(tmp_path, capsys):
    assert main(["log", "verify", "--database", str(tmp_path / "missing.db")]) == 2
    assert "No Handoff database at" in capsys.readouterr().err


def test_routes_check_and_explain(capsys):
    assert main(["routes", "check", str(SAMPLE_ROUTING)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["routes", "explain", str(FIXTURE), "--config", str(SAMPLE_ROUTING)]) == 0
    assert "Winner: rule 'po-large' (global)" in capsys.readouterr().out


def test_routes_check_names_file_line_and_fix(tmp_path, capsys):
    bad = tmp_path / "routing.toml"
    bad.write_text(SAMPLE_ROUTING.read_text().replace('members = ["dana", "erik"]', 'members = ["dana", "nobody"]'))
    assert main(["routes", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:" in out and "nobody" in out


async def test_the_demo_tells_the_whole_story_and_ends_verified():
    import io

    out = io.StringIO()
    assert await run_demo(out=out) == 0
    text = out.getvalue()
    for beat in ("HTTP 200 duplicate; still 1 card", "You can't approve your own request", "state “purchase”",
                 "What changed for P00042", "not counted", "chatter note", "(2nd escalation)", "hash chain intact"):
        assert beat in text
