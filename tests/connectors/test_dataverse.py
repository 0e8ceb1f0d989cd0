"""The Dataverse connector against the fake Web API and the fake Entra token endpoint, both served on loopback."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import aiohttp
import pytest

from handoff.bot.core.errors import ErpConflict, ErpRefused, ErpUnavailable, RecordNotFound
from handoff.bot.core.models import Decision, ErpPerson, Line, RecordRef, VendorHistory, Verb
from handoff.bot.core.retry import Backoff
from handoff.bot.fakes.dataverse import FakeDataverse
from handoff.bot.fakes.entra import FakeEntra
from handoff.bot.fakes.loopback_tls import LoopbackTls, loopback_tls
from handoff.connectors.dataverse import DataverseConnector, DataverseSettings, MsalTokenProvider, parse_webhook

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "5b0c9a3e-7f44-4c1e-9d7a-2f6e8b1c0d11"
CLIENT_SECRET = "entra-client-secret-value"
DECIDED_AT = datetime(2024, 6, 14, 12, 0, tzinfo=timezone.utc)


class ClockSleep(list):
    """An injected sleep: remembers each wait and moves the fakes' clock on by it, so nothing really sleeps."""

    def __init__(self, clock) -> None:
        super().__init__()
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.clock.advance(seconds=seconds)


class ForgedToken:
    async def token(self) -> str:
        return "not-a-token-entra-issued"

    def forget(self) -> None:
        pass


@dataclass
class Env:
    fake: FakeDataverse
    entra: FakeEntra
    url: str
    authority_host: str
    tls: LoopbackTls
    session: aiohttp.ClientSession
    sleeps: ClockSleep

    def settings(self, **overrides) -> DataverseSettings:
        values = {"url": self.url, "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "authority_host": self.authority_host, "webhook_key": "hook-key"}
        return DataverseSettings(**(values | overrides))

    def connector(self, tokens=None, **overrides) -> DataverseConnector:
        settings = self.settings(**overrides)
        tokens = tokens or MsalTokenProvider(settings, verify=self.tls.ca_file)
        return DataverseConnector(settings, self.session, tokens, backoff=Backoff(attempts=3, base_delay=0.01), sleep=self.sleeps)


@pytest.fixture
async def env(aiohttp_server, tmp_path, clock):
    tls = loopback_tls(tmp_path)
    entra = FakeEntra(clock, tenant=TENANT)
    entra.register(CLIENT_ID, CLIENT_SECRET)
    # MSAL accepts only https authorities, so the token endpoint is served with a throwaway certificate.
    entra_server = await aiohttp_server(entra.app, ssl=tls.server_context())
    fake = FakeDataverse(entra, clock)
    dataverse_server = await aiohttp_server(fake.app)
    async with aiohttp.ClientSession() as session:
        yield Env(fake, entra, str(dataverse_server.make_url("")).rstrip("/"), str(entra_server.make_url("")).rstrip("/"),
                  tls, session, ClockSleep(clock))


def ref(record_id: str) -> RecordRef:
    return RecordRef(source="dataverse", model="purchaseorder", record_id=record_id)


def decision(verb: Verb, reason: str | None = None) -> Decision:
    return Decision(verb=verb, by="Ana Lopez", reason=reason, at=DECIDED_AT)


def seed_order(fake: FakeDataverse) -> str:
    return fake.add_purchase_order(
        "PO-000123", "Acme Supplies", "12500.00", requester=("Priya Patel", "priya@contoso.com"),
        lines=[("Steel brackets", 500, "15.00"), ("Mounting kits", 100, "50.00")], attachments=2, business_unit="Sales",
    )


async def test_a_read_shows_the_record_as_an_approver_needs_it(env, clock):
    order = seed_order(env.fake)
    older = env.fake.add_purchase_order("PO-000100", "Acme Supplies", "10.00")
    env.fake.update("purchaseorder", older, new_exceptiontype="Price variance")
    clock.advance(minutes=5)
    closed = env.fake.add_purchase_order("PO-000090", "Acme Supplies", "10.00")
    env.fake.update("purchaseorder", closed, statecode=1, new_exceptiontype="Late delivery")
    env.fake.add_purchase_order("PO-000201", "Someone Else Ltd", "10.00")

    record = await env.connector(tables={"purchaseorder": {"exception_column": "new_exceptiontype"}}).fetch_record(ref(order))

    assert (record.reference, record.vendor, record.amount, record.currency) == ("PO-000123", "Acme Supplies", Decimal("12500"), "EUR")
    assert isinstance(record.amount, Decimal)
    assert record.requester == ErpPerson(name="Priya Patel", login="priya@contoso.com", email="priya@contoso.com")
    assert record.lines == (
        Line(description="Steel brackets", quantity=Decimal("500"), unit_price=Decimal("15"), subtotal=Decimal("7500")),
        Line(description="Mounting kits", quantity=Decimal("100"), unit_price=Decimal("50"), subtotal=Decimal("5000")),
    )
    assert (record.state, record.awaiting_approval, record.erp_decision) == ("Pending Approval", True, None)
    assert (record.attachment_count, record.business_unit, record.exception_type) == (2, "Sales", None)
    assert record.vendor_history == VendorHistory(open_orders=1, recent_exceptions=("Late delivery", "Price variance"))
    assert record.etag == f'W/"{env.fake.row("purchaseorder", order)["versionnumber"]}"'
    assert record.url == f"{env.url}/main.aspx?etn=purchaseorder&id={order}&pagetype=entityrecord"


async def test_reads_reuse_one_token_from_msal_s_cache(env):
    order = seed_order(env.fake)
    connector = env.connector()

    await connector.fetch_record(ref(order))
    await connector.fetch_record(ref(order))

    assert env.entra.token_requests == 1
    sent = [headers for method, _, headers in env.fake.requests]
    assert len({h["Authorization"] for h in sent}) == 1
    assert all(h["OData-Version"] == "4.0" and h["OData-MaxVersion"] == "4.0" for h in sent)


async def test_service_protection_429_waits_as_long_as_retry_after_says_then_reads(env):
    order = seed_order(env.fake)
    env.fake.limit_requests(3, per_seconds=300)  # a read takes four requests: the fourth is throttled

    record = await env.connector().fetch_record(ref(order))

    assert record.reference == "PO-000123"
    assert env.sleeps == [300.0]


async def test_an_approval_sets_the_status_under_if_match_and_is_confirmed_by_a_re_read(env):
    order = seed_order(env.fake)
    connector = env.connector()
    record = await connector.fetch_record(ref(order))

    confirmed = await connector.write_decision(record, decision(Verb.APPROVE))

    assert env.fake.row("purchaseorder", order)["statuscode"] == 100000002
    assert (confirmed.state, confirmed.erp_decision, confirmed.awaiting_approval) == ("Approved", "approved", False)
    patch = next(headers for method, _, headers in env.fake.requests if method == "PATCH")
    assert patch["If-Match"] == record.etag
    assert env.fake.notes(order) == []


async def test_a_record_changed_since_the_read_is_a_conflict_and_stays_undecided(env):
    order = seed_order(env.fake)
    connector = env.connector()
    record = await connector.fetch_record(ref(order))
    env.fake.update("purchaseorder", order, totalamount=13900.0)

    with pytest.raises(ErpConflict, match="changed since Handoff read it"):
        await connector.write_decision(record, decision(Verb.APPROVE))

    assert env.fake.row("purchaseorder", order)["statuscode"] == 100000001


async def test_a_rejection_leaves_its_reason_as_a_note_on_the_record(env):
    order = seed_order(env.fake)
    connector = env.connector()
    record = await connector.fetch_record(ref(order))

    confirmed = await connector.write_decision(record, decision(Verb.REJECT, "Over the Q3 budget; split the order."))

    assert confirmed.erp_decision == "rejected"
    assert [(n["subject"], n["notetext"]) for n in env.fake.notes(order)] == [
        ("Rejected by Ana Lopez", "Over the Q3 budget; split the order."),
    ]


async def test_retrying_a_write_that_already_got_through_is_not_mistaken_for_drift(env):
    order = seed_order(env.fake)
    connector = env.connector()
    record = await connector.fetch_record(ref(order))
    await connector.write_decision(record, decision(Verb.APPROVE))

    again = await connector.write_decision(record, decision(Verb.APPROVE))

    assert again.erp_decision == "approved"


async def test_post_note_adds_a_note_to_the_record(env):
    order = seed_order(env.fake)

    await env.connector().post_note(ref(order), "Ana asked: which budget line?")

    assert [(n["subject"], n["notetext"]) for n in env.fake.notes(order)] == [("Handoff", "Ana asked: which budget line?")]


async def test_an_app_without_an_application_user_is_refused_with_the_fix(env):
    order = seed_order(env.fake)
    env.fake.application_users = set()

    with pytest.raises(ErpRefused, match="add the app registration as an application user") as refused:
        await env.connector().fetch_record(ref(order))

    assert "0x80072560" in str(refused.value)


async def test_a_cached_token_dataverse_stops_accepting_is_replaced_once(env, clock):
    order = seed_order(env.fake)
    connector = env.connector()
    await connector.fetch_record(ref(order))
    clock.advance(hours=2)  # Dataverse's clock says the token expired; MSAL's cache still holds it

    record = await connector.fetch_record(ref(order))

    assert record.reference == "PO-000123"
    assert env.entra.token_requests == 2


async def test_a_token_dataverse_does_not_accept_is_refused_with_the_fix(env):
    order = seed_order(env.fake)

    with pytest.raises(ErpRefused, match="HANDOFF_DATAVERSE__URL is the environment's URL"):
        await env.connector(tokens=ForgedToken()).fetch_record(ref(order))


async def test_a_wrong_client_secret_is_refused_naming_the_setting_and_never_logged(env, caplog):
    caplog.set_level(logging.DEBUG)
    order = seed_order(env.fake)

    with pytest.raises(ErpRefused, match="invalid_client.*CLIENT_SECRET") as refused:
        await env.connector(client_secret="wrong-secret-value").fetch_record(ref(order))

    assert "AADSTS7000215" in str(refused.value)
    assert "wrong-secret-value" not in caplog.text


async def test_tokens_and_secrets_stay_out_of_the_logs(env, caplog):
    caplog.set_level(logging.DEBUG)
    order = seed_order(env.fake)
    env.fake.fail_next(1, status=503)

    await env.connector().fetch_record(ref(order))

    issued = [token for _, _, headers in env.fake.requests for token in [headers["Authorization"].split()[-1]]]
    assert issued and not any(token in caplog.text for token in issued)
    assert CLIENT_SECRET not in caplog.text


async def test_a_missing_record_is_not_found(env):
    with pytest.raises(RecordNotFound, match="Does Not Exist"):
        await env.connector().fetch_record(ref(str(uuid.uuid4())))


async def test_an_outage_is_unavailable_after_the_retries(env):
    order = seed_order(env.fake)
    env.fake.down = True

    with pytest.raises(ErpUnavailable, match="unavailable"):
        await env.connector().fetch_record(ref(order))

    assert len(env.sleeps) == 2


async def test_a_record_from_the_webhook_alone_carries_its_figures_but_no_etag(env):
    order = seed_order(env.fake)
    body = env.fake.webhook_body("purchaseorder", order)
    event = parse_webhook(body, {"code": "hook-key"}, {}, env.settings(), DECIDED_AT)

    record = env.connector().record_from_hint(event)

    assert (record.reference, record.vendor, record.amount, record.state) == ("PO-000123", "(vendor not in the webhook)",
                                                                               Decimal("12500.0"), "Pending Approval")
    assert record.etag is None and record.awaiting_approval
    with pytest.raises(ErpConflict, match="without an ETag"):
        await env.connector().write_decision(record, decision(Verb.APPROVE))


async def test_an_untouched_record_is_confirmed_unchanged_by_a_conditional_get(env):
    order = seed_order(env.fake)
    connector = env.connector()
    record = await connector.fetch_record(ref(order))
    seen = len(env.fake.requests)

    assert await connector.unchanged(record) is True

    check = env.fake.requests[seen]
    assert check[0] == "GET" and check[1].startswith(f"/api/data/v9.2/purchaseorders({order})?")
    assert check[2]["If-None-Match"] == record.etag


async def test_a_record_saved_since_the_read_is_not_unchanged(env):
    order = seed_order(env.fake)
    connector = env.connector()
    record = await connector.fetch_record(ref(order))
    env.fake.update("purchaseorder", order, totalamount=13000.0)
    assert await connector.unchanged(record) is False


async def test_an_edited_line_is_a_change_though_the_order_s_etag_stays(env):
    order = seed_order(env.fake)
    connector = env.connector()
    record = await connector.fetch_record(ref(order))
    line = next(key for key, row in env.fake.rows["purchaseorderdetails"].items() if row["_purchaseorderid_value"] == order)
    env.fake.update("purchaseorderdetail", line, quantity=900.0)
    assert await connector.unchanged(record) is False


async def test_a_record_without_an_etag_cannot_be_checked(env):
    order = seed_order(env.fake)
    record = (await env.connector().fetch_record(ref(order))).model_copy(update={"etag": None})
    assert await env.connector().unchanged(record) is None


@pytest.mark.parametrize("tables", [{}, {"purchaseorder": {"exception_column": "new_exceptiontype"}},
                                    {"purchaseorder": {"lines": None}}], ids=["default", "exceptions", "no lines"])
async def test_the_requests_a_read_or_write_back_makes_are_the_ones_the_connector_counts(env, tables):
    # The outbox reserves this count against the 6000-per-5-minutes limit: an undercount would meet 429s.
    connector = env.connector(**({"tables": tables} if tables else {}))
    orders = [seed_order(env.fake), seed_order(env.fake)]

    def sent_by(call_count_before: int) -> int:
        return len(env.fake.requests) - call_count_before

    for order, verb in zip(orders, (Verb.APPROVE, Verb.REJECT)):
        before = len(env.fake.requests)
        record = await connector.fetch_record(ref(order))
        assert sent_by(before) == connector.requests(ref(order))
        before = len(env.fake.requests)
        await connector.write_decision(record, decision(verb, reason="Over budget" if verb is Verb.REJECT else None))
        assert sent_by(before) == connector.requests(ref(order), verb)
