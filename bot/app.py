"""The one aiohttp application, and the one place that wires adapters into the core."""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from slack_sdk.web.async_client import AsyncWebClient

from handoff.bot.channels.slack import SlackChannel, answer_clicks, build_bolt_app, sdk_logger, slack_handler
from handoff.bot.config import Settings
from handoff.bot.console import register_console
from handoff.bot.core.act import Approvals
from handoff.bot.core.clicks import ClickInbox
from handoff.bot.core.context import Core
from handoff.bot.core.deliver import Dispatcher
from handoff.bot.core.errors import BadEvent, ConfigError, IgnoredEvent, StoreUnavailable
from handoff.bot.core.ingest import Ingestor
from handoff.bot.core.models import SourceEvent
from handoff.bot.core.pacing import Budget, Pacer
from handoff.bot.core.ports import Clock, SystemClock
from handoff.bot.core.reconcile import Reconciler
from handoff.bot.core.retry import Backoff
from handoff.bot.core.route import RoutingConfig
from handoff.bot.core.schedule import Scheduler
from handoff.bot.allowlist import networks, webhook_allow_list
from handoff.bot.faults import crash_point
from handoff.bot.metrics import ERP_CALLS, measure, register_metrics
from handoff.bot.channels.teams import TeamsChannel
from handoff.bot.channels.teams_bot import messages_handler
from handoff.bot.channels.teams_commands import TeamsCommands
from handoff.connectors import dataverse, odoo
from handoff.state.store import Store

log = logging.getLogger(__name__)

MIN_IDLE_S = 0.005


@dataclass
class Worker:
    """Drains the inbox and the outbox whenever woken, and on a slow tick so nothing waits forever."""

    ingestor: Ingestor
    dispatcher: Dispatcher
    tick_s: float = 1.0
    reconciler: Reconciler | None = None
    scheduler: Scheduler | None = None
    clicks: ClickInbox | None = None
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    quiet: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task | None = None
    _stopping: bool = False

    def wake(self) -> None:
        self.wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="handoff-worker")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Let the current round finish within `grace_s`; what is left stays queued for the next start."""
        if self._task is None:
            return
        self._stopping = True
        self.wakeup.set()
        try:
            await asyncio.wait_for(self._task, grace_s)
        except asyncio.TimeoutError:
            log.warning("worker.stop_timeout", extra={"grace_s": grace_s})
        await self.ingestor.core.followups.finish(grace_s)

    async def run_once(self) -> int:
        # Replicas sharing one PostgreSQL all drain the inbox and outbox; only the leader polls ERPs and scans for stalls.
        polled = await _isolated("reconcile", self.reconciler.maybe_tick) if self.reconciler and self.reconciler.core.store.try_lead("reconciler") else 0
        scheduled = await _isolated("schedule", self.scheduler.tick) if self.scheduler and self.scheduler.core.store.try_lead("scheduler") else 0
        replayed = await self.clicks.drain() if self.clicks else 0
        return polled + replayed + await self.ingestor.drain() + scheduled + await self.dispatcher.drain()

    async def _run(self) -> None:
        while not self._stopping:
            self.wakeup.clear()
            try:
                if await self.run_once():
                    continue
            except StoreUnavailable as down:
                # Not a bug: the store logged the loss and reconnects; unclaimed and leased rows wait for a later round.
                log.warning("worker.store_unavailable", extra={"retry_after_s": round(down.retry_after, 2)})
            except Exception:
                # A bug must not stop delivery of everything else; the row stays due and is retried.
                log.exception("worker.error")
            self.quiet.set()
            try:
                await asyncio.wait_for(self.wakeup.wait(), self.idle_s())
            except asyncio.TimeoutError:
                pass
            self.quiet.clear()

    def idle_s(self) -> float:
        """How long a round with nothing to do may sleep: a tick, or less when a queued item falls due sooner."""
        try:
            due_in = self.dispatcher.seconds_to_next()
        except StoreUnavailable:
            return self.tick_s
        # The floor keeps a row that is due but claimed elsewhere (another replica's lock) from spinning the loop.
        return self.tick_s if due_in is None else min(self.tick_s, max(MIN_IDLE_S, due_in))

    def is_settled(self) -> bool:
        """Nothing due, nobody has asked for another round, no click still being handled: what tests and the demo wait for."""
        return self.quiet.is_set() and not self.wakeup.is_set() and not self.ingestor.core.followups.busy()


async def _isolated(what: str, tick: Callable[[], Awaitable[int]]) -> int:
    """A reconcile or scheduler tick that fails is logged and tried again next round: before the inbox and outbox in
    every round, a failure there that repeats would otherwise stop every card and write-back."""
    try:
        return await tick()
    except Exception:
        log.exception("worker.error", extra={"what": what})  # the same line as any round that fails, for alerts and tests
        return 0


SETTINGS = web.AppKey("settings", Settings)
CORE = web.AppKey("core", Core)
WORKER = web.AppKey("worker", Worker)
SLACK = web.AppKey("slack", Callable)
TEAMS = web.AppKey("teams", Callable)


class QuietAccessLogger(AbstractAccessLogger):
    """Access lines without query strings: webhook URLs carry their secret there."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("http.request", extra={"method": request.method, "path": request.path, "status": response.status, "ms": round(time * 1000, 1)})


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def odoo_webhook(request: web.Request) -> web.Response:
    """POST /webhooks/odoo?key=<secret>: Odoo's webhook action has no signature, so the URL carries the secret."""
    settings = request.app[SETTINGS].odoo
    if settings is None:
        return _json_error(404, "Odoo is not configured on this Handoff (set HANDOFF_ODOO__URL and friends).")
    core = request.app[CORE]
    if not hmac.compare_digest(request.query.get("key", "").encode(), settings.webhook_secret.get_secret_value().encode()):
        log.warning("webhook.refused", extra={"path": request.path, "reason": "wrong or missing key", "remote": request.remote})
        return _json_error(401, "Wrong or missing webhook key: the URL must end with ?key=<the configured webhook secret>.")
    return await _ingest(request, lambda body: odoo.parse_webhook(body, settings, core.clock.now()))


async def dataverse_webhook(request: web.Request) -> web.Response:
    """POST /webhooks/dataverse: the service endpoint's WebhookKey (`?code=`) or header key is checked while parsing."""
    settings = request.app[SETTINGS].dataverse
    if settings is None:
        return _json_error(404, "Dataverse is not configured on this Handoff (set HANDOFF_DATAVERSE__URL and friends).")
    core = request.app[CORE]
    return await _ingest(
        request, lambda body: dataverse.parse_webhook(body, request.query, request.headers, settings, core.clock.now())
    )


async def _ingest(request: web.Request, parse: Callable[[bytes], SourceEvent]) -> web.Response:
    """Store first, then acknowledge: a webhook is answered 200 only once it is safe in the inbox."""
    core = request.app[CORE]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        log.warning("webhook.refused", extra={"path": request.path, "reason": "too large"})
        return _json_error(413, "Webhook body too large.")
    try:
        event = parse(body)
    except IgnoredEvent as ignored:
        log.info("webhook.ignored", extra={"path": request.path, "reason": str(ignored)})
        return web.json_response({"status": "ignored", "reason": str(ignored)}, status=202)
    except BadEvent as bad:
        log.warning("webhook.rejected", extra={"path": request.path, "reason": bad.reason, "status": bad.status})
        return _json_error(bad.status, bad.reason)
    inbox_id, is_new = core.store.accept_event(event)
    crash_point("after_ingest")
    log.info("webhook.accepted", extra={"ref": event.ref.key, "inbox_id": inbox_id, "new": is_new})
    if is_new:
        core.wake()
    return web.json_response({"status": "accepted" if is_new else "duplicate", "id": inbox_id})


async def slack_events(request: web.Request) -> web.StreamResponse:
    handler = request.app.get(SLACK)
    if handler is None:
        return _json_error(404, "Slack is not configured on this Handoff (set HANDOFF_SLACK__BOT_TOKEN and HANDOFF_SLACK__SIGNING_SECRET).")
    return await handler(request)


async def teams_messages(request: web.Request) -> web.StreamResponse:
    handler = request.app.get(TEAMS)
    if handler is None:
        return _json_error(404, "Teams is not configured on this Handoff (set HANDOFF_TEAMS__APP_ID and friends).")
    return await handler(request)


async def healthz(request: web.Request) -> web.Response:
    """200 with queue depths; 503 while the database is unreachable, so probes take the replica out of service."""
    store = request.app[CORE].store
    from handoff.state import outbox

    try:
        return web.json_response({"status": "ok", "inbox": store.inbox_depth(), "outbox": outbox.depth(store.conn)})
    except StoreUnavailable as down:
        return web.json_response({"status": "down", "database": "unreachable"}, status=503, headers=_retry_after(down))


def _retry_after(down: StoreUnavailable) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(down.retry_after)))}


@web.middleware
async def store_unavailable(request: web.Request, handler) -> web.StreamResponse:
    """A request the database couldn't take is answered 503, never 200: ERPs and chat platforms deliver it again."""
    try:
        return await handler(request)
    except StoreUnavailable as down:
        # The details (which server, why) are in the store's own log lines; the sender only learns to come back.
        log.warning("http.store_unavailable", extra={"path": request.path, "retry_after_s": round(down.retry_after, 2)})
        return web.json_response({"error": "The database is unreachable right now; nothing was stored. Retry later."},
                                 status=503, headers=_retry_after(down))


def create_app(settings: Settings, routing: RoutingConfig, clock: Clock | None = None) -> web.Application:
    middlewares = [webhook_allow_list(networks(settings.webhook_allow_from)), store_unavailable]
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=middlewares)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_lifecycle(routing, clock or SystemClock()))
    app.router.add_post("/webhooks/odoo", odoo_webhook)
    app.router.add_post("/webhooks/dataverse", dataverse_webhook)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_post("/api/messages", teams_messages)
    app.router.add_get("/healthz", healthz)
    register_console(app, settings.console, CORE, settings.public_url)
    register_metrics(app, CORE)
    return app


def _lifecycle(routing: RoutingConfig, clock: Clock):
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        store = Store(settings.database, clock, inbox_lease=timedelta(seconds=settings.inbox_lease_s))
        session = aiohttp.ClientSession()
        # The Slack SDK's own default limit per call (AsyncWebClient timeout=30), kept now that it shares a session.
        slack_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            connectors = {}
            # One pacer for the outbox and the connectors: a Dataverse application user has one budget, whoever spends it.
            pacer = Pacer()
            if settings.odoo:
                # The core owns retry policy (patient for enrichment, brief for clicks): one attempt per call here.
                connectors["odoo"] = odoo.OdooConnector(settings.odoo, session, backoff=Backoff(attempts=1))
            if settings.dataverse:
                tokens = dataverse.MsalTokenProvider(settings.dataverse, verify=settings.dataverse.ca_bundle)
                connectors["dataverse"] = dataverse.DataverseConnector(settings.dataverse, session, tokens, backoff=Backoff(attempts=1),
                                                                       budget=Budget(pacer, "erp.dataverse", clock))
            connectors = measure(connectors, app[ERP_CALLS])
            core = Core(store=store, routing=routing, connectors=connectors, clock=clock)
            approvals = Approvals(core)
            channels, clicks = {}, None
            if settings.slack:
                # Without a session the SDK opens a new ClientSession, connection and DNS lookup (a thread) per call
                # (slack_sdk/web/async_internal_utils.py _request_with_session): slower, and native memory that grew.
                client = AsyncWebClient(token=settings.slack.bot_token.get_secret_value(), base_url=settings.slack.api_base_url,
                                        session=slack_session, logger=sdk_logger())
                await _check_slack(client)
                channels["slack"] = SlackChannel(client)
                clicks = ClickInbox(core, approvals, answer_clicks(channels["slack"]))
                app[SLACK] = slack_handler(build_bolt_app(settings.slack, client, approvals, channels["slack"], core, clicks),
                                           settings.slack.signing_secret.get_secret_value())
            if settings.teams:
                channels["teams"] = TeamsChannel(settings.teams, store, approvals, commands=TeamsCommands(core, approvals, store))
                await channels["teams"].check()
                app[TEAMS] = messages_handler(channels["teams"])
            worker = Worker(Ingestor(core), Dispatcher(core, approvals, channels, lease=timedelta(seconds=settings.outbox_lease_s), pacer=pacer),
                            reconciler=Reconciler(core, timedelta(seconds=settings.reconcile_every_s)),
                            scheduler=Scheduler(core, channels), clicks=clicks)
            core.wake = worker.wake
            app[CORE], app[WORKER] = core, worker
            worker.start()
            yield
            await worker.stop()
            if "teams" in channels:
                await channels["teams"].close()
        finally:
            await session.close()
            await slack_session.close()
            store.close()

    return lifecycle


async def _check_slack(client: AsyncWebClient) -> None:
    """Fail at start, not at the first click, when the Slack token is wrong."""
    from slack_sdk.errors import SlackApiError

    try:
        await client.auth_test()
    except SlackApiError as error:
        raise ConfigError(
            f"Slack refused the bot token ({error.response.get('error')}). Set HANDOFF_SLACK__BOT_TOKEN to the app's "
            "Bot User OAuth Token (Slack app > OAuth & Permissions), or run `handoff demo` to use the local fakes."
        ) from error
    except (aiohttp.ClientError, OSError) as error:
        raise ConfigError(f"Slack is unreachable at {client.base_url} ({error}). Check HANDOFF_SLACK__API_BASE_URL and the network.") from error
