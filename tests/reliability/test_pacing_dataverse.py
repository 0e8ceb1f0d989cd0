"""A month-end wave of write-backs to Dataverse, paced within its service protection limit, which the fake enforces."""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import aiohttp
import pytest
from pacing_harness import deliver_all, queue
from slack_sdk.web.async_client import AsyncWebClient

from handoff.bot.channels.slack import SlackChannel
from handoff.bot.core.act import Approvals
from handoff.bot.core.context import Core
from handoff.bot.core.deliver import Dispatcher
from handoff.bot.core.effects import Effect, Effects
from handoff.bot.core.enrich import build_packet
from handoff.bot.core.ingest import Ingestor
from handoff.bot.core.models import Action, ChatIdentity, Decision, ErpRecord, RecordRef, RequestStatus, SourceEvent, Target, Verb
from handoff.bot.core.pacing import Budget, Limit, Pacer
from handoff.bot.core.retry import Backoff
from handoff.bot.core.route import RouteFacts, members, plan_route
from handoff.bot.fakes.dataverse import FakeDataverse
from handoff.bot.fakes.entra import FakeEntra
from handoff.bot.fakes.slack import FakeSlack, RateLimits
from handoff.bot.fakes.slack import Limit as SlackLimit
from handoff.bot.fakes.stack import SAMPLE_ROUTING
from handoff.bot.fakes.stack_dataverse import CLIENT_ID, CLIENT_SECRET, TENANT
from handoff.bot.metrics import ErpCalls, measure
from handoff.bot.routing_file import load_routing
from handoff.connectors.dataverse import DataverseConnector, DataverseSettings
from handoff.state import outbox
from handoff.state.store import Store

# Each request crosses real HTTP: 5,000 write-backs (25,000 requests, five windows) took 40-75 s on a busy 2-core
# machine, so the default wave crosses one window and HANDOFF_MONTH_END_WAVE=5000 runs the month-end size.
WAVE = int(os.environ.get("HANDOFF_MONTH_END_WAVE", "1300"))
PER_WRITE_BACK = 5
OPS = "C0OPS"


class ClientCredentials:
    """A TokenProvider that asks the fake Entra once, over HTTP. MSAL's own (per request a hop to a thread) is tested
    in tests/connectors; at 25,000 requests here it would be most of the test's time."""

    def __init__(self, session: aiohttp.ClientSession, token_url: str, scope: str) -> None:
        self.session, self.token_url, self.scope, self.cached = session, token_url, scope, None

    async def token(self) -> str:
        if self.cached is None:
            form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                    "scope": self.scope}
            async with self.session.post(self.token_url, data=form) as response:
                self.cached = (await response.json())["access_token"]
        return self.cached

    def forget(self) -> None:
        self.cached = None


@pytest.fixture
async def slack(clock, aiohttp_server) -> tuple[FakeSlack, SlackChannel]:
    """A fake Slack enforcing one chat.postMessage per second per channel, and the real Slack adapter in front of it."""
    fake = FakeSlack(clock=clock, rate_limits=RateLimits(post_per_channel=SlackLimit(1, 1.0)))
    fake.add_channel(OPS, "operations")
    server = await aiohttp_server(fake.app)
    return fake, SlackChannel(AsyncWebClient(token=fake.token, base_url=str(server.make_url("/api/"))))


@pytest.fixture
async def dataverse_world(tmp_path, clock, aiohttp_server):
    """A dispatcher writing back to a fake Dataverse that enforces 6000 requests per 5 minutes per user."""
    entra = FakeEntra(clock, tenant=TENANT)
    entra.register(CLIENT_ID, CLIENT_SECRET)
    entra_url = str((await aiohttp_server(entra.app)).make_url("")).rstrip("/")
    fake = FakeDataverse(entra, clock)
    dataverse_server = await aiohttp_server(fake.app)
    settings = DataverseSettings(url=str(dataverse_server.make_url("")).rstrip("/"), tenant_id=TENANT, client_id=CLIENT_ID,
                                 client_secret=CLIENT_SECRET, webhook_key="hook-key")
    store = Store(":memory:", clock)
    pacer = Pacer()
    async with aiohttp.ClientSession() as session:
        tokens = ClientCredentials(session, f"{entra_url}/{TENANT}/oauth2/v2.0/token", settings.resource_scope)
        # Wired as app.py wires it: one attempt per call (the outbox retries), measured, drawing every request from the
        # budget the outbox paces write-backs with. A request that must wait moves the simulated clock to its slot.
        budget = Budget(pacer, "erp.dataverse", clock, wait_until=lambda at: jump(clock, at))
        connector = DataverseConnector(settings, session, tokens, backoff=Backoff(attempts=1), budget=budget)
        core = Core(store=store, routing=load_routing(SAMPLE_ROUTING), connectors=measure({"dataverse": connector}, ErpCalls()),
                    clock=clock, sleep=lambda seconds: jump(clock, clock.now() + timedelta(seconds=seconds)))
        approvals = Approvals(core)
        try:
            yield core, approvals, fake, pacer
        finally:
            store.close()


async def jump(clock, at: datetime) -> None:
    clock.at = max(clock.at, at)


def decided(core: Core, fake: FakeDataverse, count: int) -> list[str]:
    """`count` orders approved in chat, their write-backs queued: what a month-end afternoon leaves in the outbox."""
    order_ids = []
    with core.store.transaction() as conn:
        for n in range(count):
            vendor = f"Vendor {n % 100}"
            order_id = fake.add_purchase_order(f"PO-{n:06d}", vendor, "1200.00", lines=[], attachments=0)
            record = ErpRecord(ref=RecordRef(source="dataverse", model="purchaseorder", record_id=order_id),
                               reference=f"PO-{n:06d}", state="Pending Approval", vendor=vendor, amount=Decimal("1200.00"),
                               currency="EUR", etag=f'W/"{fake.row("purchaseorder", order_id)["versionnumber"]}"')
            plan = plan_route(core.routing, RouteFacts.from_record(record))
            packet = build_packet(core.store.new_request_id(), 1, record, plan.policy_notes)
            request = core.store.create_request(packet, plan, "slack", None, core.clock.now())
            Effects(conn, core.clock.now()).erp_write(request.id, 1, Decision(verb=Verb.APPROVE, by="Ana Lopez", at=core.clock.now()))
            order_ids.append(order_id)
    return order_ids


def approved_at(fake: FakeDataverse, order_id: str) -> datetime:
    row = fake.row("purchaseorder", order_id)
    assert row["statuscode"] == 100000002, "approved in Dataverse"
    return datetime.strptime(row["modifiedon"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


async def test_a_month_end_wave_of_write_backs_goes_out_at_the_service_protection_limit(dataverse_world, clock):
    core, approvals, fake, pacer = dataverse_world
    dispatcher = Dispatcher(core, approvals, {}, pacer=pacer)
    orders = decided(core, fake, WAVE)
    start = clock.now().replace(microsecond=0)

    await deliver_all(dispatcher, core.store, clock, kinds=(Effect.ERP_WRITE.value,))

    assert fake.rate_limited_count == 0
    # Each write-back on its first claim: the PATCH and the re-read that confirms it (record, lines, the vendor's open
    # orders, attachment count). Nothing more, nothing asked twice.
    assert len(fake.requests) == PER_WRITE_BACK * WAVE
    # 6000 requests per 300 s, a write-back's 5 together: 1200 a window, the last in the final window, from its start.
    # That is also the bound for the requests one by one (5,000: 25,000 requests, five windows, the last from 1200 s).
    minimum = (math.ceil(WAVE / (6000 // PER_WRITE_BACK)) - 1) * 300
    assert minimum == (math.ceil(PER_WRITE_BACK * WAVE / 6000) - 1) * 300
    finished = max(approved_at(fake, order) for order in orders)
    assert (finished - start).total_seconds() == pytest.approx(minimum, abs=1)
    assert len(core.store.requests_by_status(RequestStatus.APPROVED)) == WAVE
    assert {item.attempts for item in outbox.items(core.store.conn) if item.kind == Effect.ERP_WRITE} == {1}


async def test_a_429_pauses_only_dataverse_while_chat_posts_keep_flowing(dataverse_world, slack, clock):
    core, approvals, fake, pacer = dataverse_world
    slack_fake, slack_channel = slack
    dispatcher = Dispatcher(core, approvals, {"slack": slack_channel}, pacer=pacer)
    orders = decided(core, fake, 20)
    queue(core.store, clock, Target(platform="slack", kind="channel", address=OPS), 10)
    fake.fail_next(1, status=429, retry_after=120)
    start = clock.now()

    await deliver_all(dispatcher, core.store, clock, kinds=(Effect.ERP_WRITE.value, Effect.NOTIFY.value))

    # The first PATCH met the 429: every write-back waited out its Retry-After, and none asked again before it ended.
    assert [(approved_at(fake, order) - start).total_seconds() for order in orders] == [pytest.approx(120, abs=1)] * 20
    assert len(fake.requests) == 1 + PER_WRITE_BACK * 20
    # Meanwhile the chat posts went out at Slack's own pace, one a second from the start, as if Dataverse were idle.
    assert [float(m.ts) - start.timestamp() for m in slack_fake.messages[OPS]] == [pytest.approx(n, abs=0.5) for n in range(10)]
    assert slack_fake.rate_limited_count == 0
    # Waiting is no failed attempt, and Dataverse was not down: nobody is told it is unreachable.
    items = outbox.items(core.store.conn)
    assert {item.attempts for item in items if item.kind == Effect.ERP_WRITE} == {1}
    assert not [item for item in items if item.idempotency_key.startswith("erp-wait:")]


async def test_webhooks_clicks_and_write_backs_draw_from_one_budget_without_a_429(dataverse_world, clock):
    core, approvals, fake, pacer = dataverse_world
    # The same rule at a tenth of the scale: 600 requests per 300 s, in the fake and in the pacer.
    fake.limit_requests(600, 300)
    pacer.limits = {**pacer.limits, "erp.dataverse": (Limit(600, 300.0),)}
    dispatcher = Dispatcher(core, approvals, {}, pacer=pacer)
    ingestor, start = Ingestor(core), clock.now()
    orders = [fake.add_purchase_order(f"PO-{n:06d}", "Acme Supplies", "1200.00", lines=[], attachments=0) for n in range(125)]

    def webhook(order_id: str) -> SourceEvent:
        return SourceEvent(ref=RecordRef(source="dataverse", model="purchaseorder", record_id=order_id),
                           dedup_key=f"hook-{order_id}", received_at=clock.now())

    # 100 webhooks, each enriched (4 requests: the order, its lines, the vendor's open orders, the attachment count),
    # and a click on each card (its drift check: a conditional GET and the lines): all 600 at once.
    requests = [(await ingestor.process(webhook(order)))[1] for order in orders[:100]]
    for request_id in requests:
        request = core.store.get_request(request_id)
        approver = members(core.routing, request.plan.stages[request.stage].role)[0]
        result = await approvals.act(Action(request_id=request_id, version=request.packet.version, stage=request.stage,
                                            verb=Verb.APPROVE, actor=ChatIdentity(platform="slack", user_id=approver.slack)))
        assert result.outcome.value == "request_decided", result.message
    assert clock.now() == start and len(fake.requests) == 600
    # The budget is spent: 100 write-backs (5 requests each) wait in the outbox, and 25 more webhooks wait for their
    # requests' slots after those, rather than meet a 429.
    await deliver_all(dispatcher, core.store, clock, kinds=())
    late = [(await ingestor.process(webhook(order)))[1] for order in orders[100:]]
    await deliver_all(dispatcher, core.store, clock, kinds=(Effect.ERP_WRITE.value,))

    assert fake.rate_limited_count == 0
    assert len(fake.requests) == 600 + 5 * 100 + 4 * 25
    # The limit-bound minimum: 600 in the first window, the other 600 as the first leave it, at 300 s.
    assert [(approved_at(fake, order) - start).total_seconds() for order in orders[:100]] == [pytest.approx(300, abs=1)] * 100
    assert len(core.store.requests_by_status(RequestStatus.APPROVED)) == 100
    assert all(core.store.get_request(request_id).packet.incomplete_reason is None for request_id in late)
    assert (clock.now() - start).total_seconds() == pytest.approx(300, abs=1)
