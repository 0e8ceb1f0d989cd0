"""The `handoff` command: serve, demo, routes, log, outbox, manifest."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

from handoff.bot.admin.commands import register as register_admin
from handoff.bot.config import load_settings
from handoff.bot.bench.commands import register as register_bench
from handoff.bot.core.errors import ConfigError, HandoffError
from handoff.bot.core.events import Event
from handoff.manifest.commands import register as register_manifest

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: the event name as message, the facts as fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "at": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup_logging(level: str = "INFO", stream=sys.stderr) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from handoff.bot.app import QuietAccessLogger, create_app
    from handoff.bot.routing_file import load_routing

    setup_logging(args.log_level)
    settings = load_settings()
    routing = load_routing(Path(args.routing or settings.routing))
    app = create_app(settings, routing)
    # Everything built so far (modules, botbuilder's and msrest's model classes, the routing) lives as long as the
    # process; frozen out of the collector, a full collection scans only what requests made: ~5 ms, not 60-120 ms
    # that stalled every in-flight request (Teams click -> ack p99, `handoff bench`).
    gc.collect()
    gc.freeze()
    # run_app turns SIGTERM/SIGINT into a graceful shutdown: cleanup contexts drain the worker.
    web.run_app(app, host=settings.host, port=settings.port, access_log_class=QuietAccessLogger, print=None)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from handoff.bot.demo import run_demo

    routing = Path(args.routing) if args.routing else None
    return asyncio.run(run_demo(keep_running=args.keep_running, source=args.source, chat=args.chat, routing=routing))


def cmd_routes_check(args: argparse.Namespace) -> int:
    from handoff.bot.routing_file import check

    ok, lines = check(Path(args.file))
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_routes_explain(args: argparse.Namespace) -> int:
    from handoff.bot.core.route import explain
    from handoff.bot.explain_event import facts_from_event
    from handoff.bot.routing_file import load_routing

    routing = load_routing(Path(args.config))
    facts = facts_from_event(Path(args.event))
    print("\n".join(explain(routing, facts)))
    return 0


def _open_store(path: str | None):
    from handoff.bot.core.ports import SystemClock
    from handoff.state.store import Store

    from handoff.state.pg import is_postgres

    database = path or load_settings().database
    if not is_postgres(str(database)) and not Path(database).exists():
        raise ConfigError(f"No Handoff database at {database}. Pass --database or set HANDOFF_DATABASE.")
    return Store(database, SystemClock())


def cmd_log_verify(args: argparse.Namespace) -> int:
    from handoff.state import decision_log

    store = _open_store(args.database)
    result = decision_log.verify(store.conn)
    if result.ok:
        print(f"Decision log OK: {result.checked} entries, chain head {result.head[:16]}…")
        return 0
    print(f"Decision log FAILED verification ({result.checked} entries read):")
    print("\n".join(f"  - {problem}" for problem in result.problems))
    return 1


def cmd_log_export(args: argparse.Namespace) -> int:
    from handoff.state import decision_log

    text = decision_log.export(_open_store(args.database).conn, args.format)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    from handoff.bot.core.ports import SystemClock
    from handoff.state import outbox

    store = _open_store(args.database)
    if args.outbox_command == "list":
        items = outbox.items(store.conn, None if args.all else "dead")
        for item in items:
            print(f"{item.id}\t{item.status}\t{item.kind}\t{item.request_id or '-'}\tattempts={item.attempts}\t{item.last_error or ''}")
        if not items:
            print("No dead letters." if not args.all else "The outbox is empty.")
        return 0
    if args.outbox_command == "retry":
        ok = outbox.revive(store.conn, args.id, SystemClock().now())
        print(f"Outbox item {args.id} queued again." if ok else f"Outbox item {args.id} is not a dead letter.")
        return 0 if ok else 1
    reason = args.reason or input(f"Why drop outbox item {args.id}? ").strip()
    if not reason:
        print("A reason is required to drop an item: it goes into the decision log.")
        return 1
    with store.transaction() as conn:
        ok = outbox.drop(conn, args.id, reason)
        if ok:
            store.log(None, Event.OUTBOX_ITEM_DROPPED, "admin", {"item": args.id, "reason": reason})
    print(f"Outbox item {args.id} dropped." if ok else f"Outbox item {args.id} is not pending or dead.")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="handoff", description="Approvals between your ERP and your team's chat.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the bot (webhooks, Slack, Teams) on HANDOFF_HOST:HANDOFF_PORT")
    serve.add_argument("--routing", help="routing TOML (default: HANDOFF_ROUTING or routing.toml)")
    serve.add_argument("--log-level", default="INFO")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="run the whole story locally against fakes, no credentials needed")
    demo.add_argument("--keep-running", action="store_true", help="leave the fakes and Handoff up for exploring")
    demo.add_argument("--source", choices=("odoo", "dataverse"), default="odoo", help="the ERP the requests come from")
    demo.add_argument("--chat", choices=("slack", "teams"), default="slack",
                      help="where people decide (teams + --keep-running: open to the npm Teams playground, no auth)")
    demo.add_argument("--routing", metavar="TOML", help="your routing file instead of the sample: no story, Handoff and the "
                      "fakes wait on port 3978 for you (e.g. the playground's user as an approver)")
    demo.set_defaults(func=cmd_demo)

    routes = sub.add_parser("routes", help="check or explain the routing config").add_subparsers(dest="routes_command", required=True)
    check = routes.add_parser("check", help="validate a routing TOML file")
    check.add_argument("file", nargs="?", default="routing.toml")
    check.set_defaults(func=cmd_routes_check)
    explain = routes.add_parser("explain", help="show which rule an event matches and why")
    explain.add_argument("event", help="a webhook body (Odoo or Dataverse) or a JSON object of route facts")
    explain.add_argument("--config", default="routing.toml")
    explain.set_defaults(func=cmd_routes_explain)

    log_cmd = sub.add_parser("log", help="verify or export the decision log").add_subparsers(dest="log_command", required=True)
    verify = log_cmd.add_parser("verify", help="check the hash chain; names any edited, deleted or moved entry")
    verify.add_argument("--database")
    verify.set_defaults(func=cmd_log_verify)
    export = log_cmd.add_parser("export", help="write the log as JSON Lines or CSV")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--out")
    export.add_argument("--database")
    export.set_defaults(func=cmd_log_export)

    outbox_cmd = sub.add_parser("outbox", help="dead letters: list, retry, drop").add_subparsers(dest="outbox_command", required=True)
    listing = outbox_cmd.add_parser("list", help="dead letters (or --all)")
    listing.add_argument("--all", action="store_true")
    retry = outbox_cmd.add_parser("retry", help="queue a dead letter again")
    retry.add_argument("id", type=int)
    dropping = outbox_cmd.add_parser("drop", help="give up on an item, with a reason")
    dropping.add_argument("id", type=int)
    dropping.add_argument("--reason")
    for p in (listing, retry, dropping):
        p.add_argument("--database")
        p.set_defaults(func=cmd_outbox)

    register_manifest(sub)
    register_admin(sub)
    register_bench(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HandoffError as error:
        print(f"handoff: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
