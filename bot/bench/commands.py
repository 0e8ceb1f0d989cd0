"""`handoff bench`: measure Handoff against the machine's own ceiling, on loopback, and say which targets hold."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path


def cmd_bench(args: argparse.Namespace) -> int:
    from .report import table
    from .run import Options, parse_backends, run_bench

    try:
        backends = parse_backends(args.backends)
    except ValueError as error:
        print(f"handoff bench: {error}", file=sys.stderr)
        return 2
    options = Options.quick_run(args.duration) if args.quick else Options(duration_s=args.duration or Options.duration_s)
    sizes = {k: v for k, v in (("stall_rows", args.stall_rows), ("memory_requests", args.memory_requests),
                               ("postgres", args.database)) if v is not None}
    options = replace(options, backends=backends, **sizes)
    result = asyncio.run(run_bench(options, progress=lambda line: print(line, flush=True)))
    print()
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"\nwrote {args.json}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `handoff bench` to the CLI."""
    bench = sub.add_parser("bench", help="benchmark Handoff against local fakes and a bare-handler ceiling, on loopback")
    bench.add_argument("--quick", action="store_true", help="a few seconds per scenario, 10,000 stall rows, 2,000 memory requests")
    bench.add_argument("--duration", type=float, help="seconds per scenario and concurrency (default 10, --quick 2)")
    bench.add_argument("--json", metavar="OUT", help="also write the full result as JSON to OUT")
    bench.add_argument("--stall-rows", type=int, help="open requests in the stall scan (default 100,000)")
    bench.add_argument("--memory-requests", type=int, help="webhook → card flows for the memory scenario (default 100,000)")
    bench.add_argument("--backends", default="sqlite,postgresql",
                       help="state backends to measure, comma-separated (default both; PostgreSQL is skipped, with the reason, "
                            "when it does not answer)")
    bench.add_argument("--database", metavar="POSTGRESQL_URL",
                       help="the PostgreSQL server for that backend's run (default postgresql://postgres@127.0.0.1:5432/postgres); "
                            "each scenario gets a schema of its own, dropped afterwards")
    bench.set_defaults(func=cmd_bench)
