#!/usr/bin/env bash
# The test suite a second time, on PostgreSQL (each test in its own schema), when a server is reachable.
# Default: the local server our machines run (127.0.0.1:5432, trust auth, database `test`); override with
# HANDOFF_TEST_DATABASE. Without a reachable server this pass is skipped and says why; the SQLite pass still ran.
set -uo pipefail
cd "$(dirname "$0")/.."
url="${HANDOFF_TEST_DATABASE:-postgresql://postgres@127.0.0.1:5432/test}"
reason=$(.venv/bin/python -c "from handoff.bot.fakes.postgres import reachable; import sys; print(reachable(sys.argv[1]) or '')" "$url")
if [ -n "$reason" ]; then
    echo "test-postgres: skipping the PostgreSQL pass: $reason"
    exit 0
fi
echo "test-postgres: running the suite on PostgreSQL"
HANDOFF_TEST_DATABASE="$url" exec .venv/bin/python -m pytest -q -p no:cacheprovider
