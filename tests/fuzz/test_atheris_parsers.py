"""A short run of the atheris harness per parser: any exception other than the parser's documented refusal fails it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris ships wheels for Linux x86_64 only (pip install atheris)")

HARNESS = Path(__file__).with_name("parsers_harness.py")


@pytest.mark.parametrize("target, runs", [("odoo", 20_000), ("dataverse", 20_000), ("routing", 300), ("escape", 20_000)])
def test_the_parser_survives_a_short_coverage_guided_run(target, runs, tmp_path):
    # A fixed seed keeps CI reproducible; run the harness longer by hand to search further.
    # TMPDIR: the harness's seed corpus and scratch files land in tmp_path, which pytest cleans up.
    done = subprocess.run([sys.executable, str(HARNESS), target, f"-runs={runs}", "-max_total_time=20", "-seed=1",
                           f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Done {runs} runs" in done.stderr
