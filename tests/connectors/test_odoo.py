"""The Odoo connector against the fake Odoo served on loopback: reads, decisions, failures, and the webhook it parses."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from pydantic import ValidationError

from handoff.bot.core.errors import BadEvent, ErpRefused, ErpUnavailable, IgnoredEvent, RecordNotFound
from handoff.bot.core.models import Decision, ErpPerson, ErpRecord, Line, RecordRef, Verb, VendorHistory
from handoff.bot.core.retry import Backoff
from handoff.bot.fakes.odoo import FakeOdoo
from handoff.connectors.odoo import OdooConnector, OdooSettings, parse_webhook

FIXTURE = Path(__file__).parent.parent / "fixtures" / "odoo" / "webhook_purchase_order.json"
RECEIVED = datetime(2024, 6, 14, 11, 20, tzinfo=timezone.utc)


class Sleeps(list):
    """An injected sleep that only remembers what it was asked to wait."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@dataclass
class Odoo:
    fake: FakeOdoo
    url: str
    session: aiohttp.ClientSession
    sleeps: Sleeps

    def settings(self, **overrides) -> OdooSettings:
        values = {"url": self.url, "database": self.fake.database, "login": self.fake.api_login, "api_key": self.fake.api_key,
                  "webhook_secret": "hook-secret"}
        return OdooSettings(**(values | overrides))

    def connector(self, **overrides) -> OdooConnector:
        return OdooConnector(self.settings(**overrides), self.session, backoff=Backoff(attempts=3, base_delay=0.01), sleep=self.sleeps)


def ref(order_id: int) -> RecordRef:
    return RecordRef(source="odoo", model="purchase.order", record_id=str(order_id))


def decision(verb: Verb, reason: str | None = None) -> Decision:
    return Decision(verb=verb, by="Ana Lopez", reason=reason, at=RECEIVED)


def chatter(fake: FakeOdoo, order_id: int) -> list[tuple[str, str, str]]:
    messages = fake.db.records["mail.message"].values()
    subtypes = fake.db.records["mail.message.subtype"]
    return [(m["body"], m["message_type"], subtypes[m["subtype_id"]]["name"]) for m in messages if m["res_id"] == order_id]


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def serve_odoo(aiohttp_server, session):
    async def serve(version: int = 19) -> Odoo:
        fake = FakeOdoo(version=version)
        server = await aiohttp_server(fake.app)
        return Odoo(fake, str(server.make_url("")).rstrip("/"), session, Sleeps())

    return serve


@pytest.fixture
async def odoo(serve_odoo) -> Odoo:
    return await serve_odoo(19)


@pytest.mark.parametrize("version", [17, 18, 19])
async def test_reads_a_purchase_order_with_the_api_its_version_offers(serve_odoo, version):
    odoo = await serve_odoo(version)
    fake = odoo.fake
    fake.add_purchase_order(name="P00031", vendor="Acme Supplies", state="purchase", amount=4200, date_order="2024-04-02 08:30:00",
                            x_exception_type="price_variance")
    fake.add_purchase_order(name="P00035", vendor="Acme Supplies", state="cancel", amount=980, date_order="2024-05-10 14:05:00")
    order = fake.add_purchase_order(name="P00042", vendor="Acme Supplies", requester_login="marc@example.com", attachments=2,
                                    lines=[("Steel bolts M8", 500, 12.0), ("Hydraulic fittings kit", 100, 45.0)], date_order="2024-06-14 09:12:00")
    connector = odoo.connector(exception_field="x_exception_type", region_by_business_unit={"Handoff Demo EU": "EMEA"})

    record = await connector.fetch_record(ref(order))

    assert record == ErpRecord(
        ref=ref(order), reference="P00042", state="to approve", vendor="Acme Supplies", amount=Decimal("10500"), currency="EUR",
        requester=ErpPerson(name="Marc", login="marc@example.com", email="marc@example.com"),
        lines=(Line(description="Steel bolts M8", quantity=Decimal(500), unit_price=Decimal(12), subtotal=Decimal(6000)),
               Line(description="Hydraulic fittings kit", quantity=Decimal(100), unit_price=Decimal(45), subtotal=Decimal(4500))),
        business_unit="Handoff Demo EU", region="EMEA", attachment_count=2,
        url=f"{odoo.url}/web#id={order}&model=purchase.order&view_type=form",
        etag=fake.db.records["purchase.order"][order]["write_date"],
        vendor_history=VendorHistory(open_orders=1, recent_exceptions=("price_variance",)),
        awaiting_approval=True,
    )
    json2_used = any(r.startswith("POST /json/2/") for r in fake.requests)
    assert json2_used == (version >= 19)


@pytest.mark.parametrize(("version", "probe"), [(18, "common.version"), (19, "web.version")])
async def test_detects_the_api_and_authenticates_once(serve_odoo, version, probe):
    odoo = await serve_odoo(version)
    order = odoo.fake.add_purchase_order(lines=[("Bolts", 1, 10.0)])
    connector = odoo.connector()

    await connector.fetch_record(ref(order))
    await connector.fetch_record(ref(order))

    assert odoo.fake.calls[probe] == 1
    assert odoo.fake.calls["common.authenticate"] == (1 if version < 19 else 0)


async def test_jsonrpc_can_be_chosen_on_odoo_19(odoo):
    order = odoo.fake.add_purchase_order(amount=100)
    record = await odoo.connector(api="jsonrpc").fetch_record(ref(order))
    assert record.amount == Decimal(100)
    assert not any(r.startswith("POST /json/2/") for r in odoo.fake.requests)


async def test_json2_on_odoo_18_says_which_api_to_use(serve_odoo):
    odoo = await serve_odoo(18)
    order = odoo.fake.add_purchase_order(amount=100)
    with pytest.raises(ErpRefused) as refused:
        await odoo.connector(api="json2").fetch_record(ref(order))
    assert str(refused.value) == (
        f"Odoo at {odoo.url} has no JSON-2 API (HTTP 404 on /json/2/purchase.order/read); it needs Odoo 19 or later. "
        "Set HANDOFF_ODOO__API=jsonrpc (Odoo 17/18) or auto."
    )


async def test_section_lines_are_left_out(odoo):
    order = odoo.fake.add_purchase_order(lines=[("Bolts", 2, 5.0)])
    odoo.fake.db.create("purchase.order.line", {"name": "Installation", "order_id": order, "product_qty": 0.0, "price_unit": 0.0,
                                                "price_subtotal": 0.0, "display_type": "line_section"})
    record = await odoo.connector().fetch_record(ref(order))
    assert [line.description for line in record.lines] == ["Bolts"]


@pytest.mark.parametrize(("version", "message"), [
    (19, "Odoo refused the API key for 'handoff-bot' (Invalid apikey). Create a key for the API user "
         "(Odoo > Preferences > Account Security > New API Key) and set HANDOFF_ODOO__API_KEY."),
    (18, "Odoo rejected login 'handoff-bot' with the configured API key on database 'handoff'. Check HANDOFF_ODOO__LOGIN, "
         "HANDOFF_ODOO__DATABASE and HANDOFF_ODOO__API_KEY (Odoo > Preferences > Account Security > New API Key)."),
])
async def test_a_wrong_api_key_is_refused_at_once_with_the_fix(serve_odoo, version, message):
    odoo = await serve_odoo(version)
    order = odoo.fake.add_purchase_order(amount=100)
    with pytest.raises(ErpRefused) as refused:
        await odoo.connector(api_key="revoked-key").fetch_record(ref(order))
    assert str(refused.value) == message
    assert odoo.sleeps == []


@pytest.mark.parametrize(("version", "says"), [(18, 'database "nope" does not exist'), (19, "database 'nope' not found")])
async def test_a_wrong_database_is_refused_naming_it(serve_odoo, version, says):
    odoo = await serve_odoo(version)
    with pytest.raises(ErpRefused, match=says):
        await odoo.connector(database="nope").fetch_record(ref(1))
    assert odoo.sleeps == []


async def test_a_key_revoked_after_authentication_is_refused(serve_odoo):
    odoo = await serve_odoo(18)
    order = odoo.fake.add_purchase_order(amount=100)
    connector = odoo.connector()
    await connector.fetch_record(ref(order))
    odoo.fake.api_key = "rotated"
    with pytest.raises(ErpRefused, match=r"^Odoo denied the API user 'handoff-bot' \(Access Denied\)\. Check HANDOFF_ODOO__LOGIN"):
        await connector.fetch_record(ref(order))


async def test_odoo_down_is_retried_then_unavailable(odoo):
    odoo.fake.down = True
    with pytest.raises(ErpUnavailable) as unavailable:
        await odoo.connector().fetch_record(ref(1))
    assert str(unavailable.value) == (
        "Odoo answered HTTP 503 to GET /web/version: it is down or overloaded. Handoff retries; "
        "if this persists, check Odoo's server and its proxy."
    )
    assert odoo.fake.requests == ["GET /web/version"] * 3
    assert len(odoo.sleeps) == 2


async def test_odoo_unreachable_is_unavailable(session):
    url = f"http://127.0.0.1:{unused_port()}"
    settings = OdooSettings(url=url, database="handoff", login="bot", api_key="k", webhook_secret="s", api="json2")
    sleeps = Sleeps()
    connector = OdooConnector(settings, session, backoff=Backoff(attempts=2), sleep=sleeps)
    with pytest.raises(ErpUnavailable, match=rf"^Odoo at {url} is unreachable \(ClientConnectorError: .*\)\. Check HANDOFF_ODOO__URL"):
        await connector.fetch_record(ref(1))
    assert len(sleeps) == 1


async def test_a_hung_odoo_times_out_and_is_retried(odoo):
    odoo.fake.stall_next(3)
    with pytest.raises(ErpUnavailable) as unavailable:
        await odoo.connector(api="json2", timeout_s=0.05).fetch_record(ref(1))
    assert str(unavailable.value) == (
        f"Odoo at {odoo.url} did not answer POST /json/2/purchase.order/read within 0.05s. "
        "Check that Odoo is up, or raise HANDOFF_ODOO__TIMEOUT_S."
    )
    assert len(odoo.sleeps) == 2


async def test_throttling_waits_as_long_as_odoo_asks(odoo):
    order = odoo.fake.add_purchase_order(amount=100)
    odoo.fake.fail_next(1, status=429, retry_after=7)
    record = await odoo.connector(api="json2").fetch_record(ref(order))
    assert record.amount == Decimal(100)
    assert odoo.sleeps == [7.0]


async def test_approve_confirms_the_order_and_notes_who_decided(odoo):
    order = odoo.fake.add_purchase_order(name="P00042", amount=900)
    connector = odoo.connector()
    before = await connector.fetch_record(ref(order))

    after = await connector.write_decision(before, decision(Verb.APPROVE))

    assert (after.state, after.erp_decision, after.awaiting_approval) == ("purchase", "approved", False)
    assert chatter(odoo.fake, order) == [("<p>Approved in Handoff by Ana Lopez.</p>", "comment", "Note")]


@pytest.mark.parametrize(("version", "state"), [(17, "done"), (19, "purchase")])
async def test_approve_in_a_company_that_locks_orders_reads_as_approved(serve_odoo, version, state):
    odoo = await serve_odoo(version)
    odoo.fake.add_company("Locked Co", po_lock="lock")
    order = odoo.fake.add_purchase_order(amount=900, company="Locked Co")
    connector = odoo.connector()
    after = await connector.write_decision(await connector.fetch_record(ref(order)), decision(Verb.APPROVE))
    assert (after.state, after.erp_decision) == (state, "approved")


async def test_approve_silently_skipped_above_the_threshold_names_the_fix(odoo):
    odoo.fake.add_company("Two Step Co", double_validation="two_step", threshold=5000)
    order = odoo.fake.add_purchase_order(name="P00042", amount=12500, company="Two Step Co")
    connector = odoo.connector()
    record = await connector.fetch_record(ref(order))

    with pytest.raises(ErpRefused) as refused:
        await connector.write_decision(record, decision(Verb.APPROVE))

    assert str(refused.value) == (
        "Odoo left P00042 in 'to approve' after button_approve: it silently skips orders at or above the company's double "
        "validation amount when the API user is not a Purchase manager. Fix: give the API user handoff-bot the Purchase / "
        "Administrator group, or raise the company's double validation amount; then retry."
    )
    assert odoo.fake.db.records["purchase.order"][order]["state"] == "to approve"
    assert chatter(odoo.fake, order) == []

    odoo.fake.set_purchase_manager(True)
    after = await connector.write_decision(record, decision(Verb.APPROVE))
    assert after.erp_decision == "approved"


@pytest.mark.parametrize("api", ["json2", "jsonrpc"])
async def test_reject_cancels_and_posts_the_reason_to_the_chatter(odoo, api):
    order = odoo.fake.add_purchase_order(amount=900)
    connector = odoo.connector(api=api)
    record = await connector.fetch_record(ref(order))

    after = await connector.write_decision(record, decision(Verb.REJECT, "Price is 20% above the framework agreement"))

    assert (after.state, after.erp_decision) == ("cancel", "rejected")
    assert chatter(odoo.fake, order) == [
        ("<p>Rejected in Handoff by Ana Lopez: Price is 20% above the framework agreement</p>", "comment", "Note")
    ]


@pytest.mark.parametrize("api", ["json2", "jsonrpc"])
async def test_reject_of_a_locked_order_gives_odoos_reason(odoo, api):
    order = odoo.fake.add_purchase_order(name="P00042", amount=900, state="purchase")
    odoo.fake.set_field("purchase.order", order, locked=True)
    connector = odoo.connector(api=api)
    with pytest.raises(ErpRefused) as refused:
        await connector.write_decision(await connector.fetch_record(ref(order)), decision(Verb.REJECT, "late"))
    assert str(refused.value) == (
        "Odoo refused purchase.order.button_cancel: Unable to cancel purchase order(s): P00042. You must first unlock them. "
        "(odoo.exceptions.UserError). Fix the cause in Odoo or in Handoff's Odoo settings, then retry."
    )
    assert odoo.sleeps == []


@pytest.mark.parametrize("api", ["json2", "jsonrpc"])
async def test_a_deleted_order_is_not_found(odoo, api):
    with pytest.raises(RecordNotFound, match=r"^Odoo has no purchase.order 999 that the API user 'handoff-bot' can see\."):
        await odoo.connector(api=api).fetch_record(ref(999))


async def test_writing_to_a_deleted_order_is_not_found(odoo):
    order = odoo.fake.add_purchase_order(amount=900)
    connector = odoo.connector()
    record = await connector.fetch_record(ref(order))
    del odoo.fake.db.records["purchase.order"][order]
    with pytest.raises(RecordNotFound, match=r"^Odoo says the record is gone \(Record does not exist or has been deleted\."):
        await connector.write_decision(record, decision(Verb.APPROVE))


async def test_missing_access_rights_are_refused_with_the_fix(odoo):
    order = odoo.fake.add_purchase_order(amount=900)
    odoo.fake.db.denied_models.add("res.users")
    with pytest.raises(ErpRefused) as refused:
        await odoo.connector().fetch_record(ref(order))
    assert str(refused.value) == (
        "Odoo refused res.users.read to the API user 'handoff-bot': You are not allowed to access 'res.users' "
        "records.\n\nContact your administrator to request access if necessary. Give that user the access it needs "
        "(at least Purchase / User), then retry."
    )


async def test_a_misconfigured_exception_field_is_refused_not_retried(odoo):
    order = odoo.fake.add_purchase_order(amount=900)
    with pytest.raises(ErpRefused, match=r"^Odoo refused purchase.order.read: Invalid field 'x_exception' on model 'purchase.order'"):
        await odoo.connector(exception_field="x_exception").fetch_record(ref(order))
    assert odoo.sleeps == []


async def test_post_note_logs_an_internal_note(odoo):
    order = odoo.fake.add_purchase_order(amount=900)
    await odoo.connector().post_note(ref(order), "Marc was asked for the quotation <PDF>.")
    assert chatter(odoo.fake, order) == [("<p>Marc was asked for the quotation &lt;PDF&gt;.</p>", "comment", "Note")]


async def test_the_api_key_never_reaches_the_logs(serve_odoo, caplog):
    caplog.set_level(logging.DEBUG)
    for version in (18, 19):
        odoo = await serve_odoo(version)
        order = odoo.fake.add_purchase_order(amount=900)
        await odoo.connector().fetch_record(ref(order))
        with pytest.raises(ErpRefused):
            await odoo.connector(exception_field="x_nope").fetch_record(ref(order))
        odoo.fake.down = True
        with pytest.raises(ErpUnavailable):
            await odoo.connector(api="json2").fetch_record(ref(order))
    assert caplog.records
    assert all(odoo.fake.api_key not in f"{r.getMessage()} {vars(r)}" for r in caplog.records)


async def test_a_webhook_leads_to_the_live_record(odoo):
    order = odoo.fake.add_purchase_order(name="P00042", amount=900)
    connector = odoo.connector()
    event = parse_webhook(odoo.fake.webhook_body(order), connector.settings, RECEIVED)
    odoo.fake.set_field("purchase.order", order, amount_total=950.0)
    record = await connector.fetch_record(event.ref)
    assert (record.reference, record.amount, event.hint["amount_total"]) == ("P00042", Decimal(950), 900.0)


def test_record_from_hint_shows_what_the_webhook_said():
    settings = OdooSettings(url="https://odoo.example.com/", database="db", login="bot", api_key="k", webhook_secret="s")
    event = parse_webhook(FIXTURE.read_bytes(), settings, RECEIVED)
    record = OdooConnector(settings, session=None).record_from_hint(event)
    assert record == ErpRecord(
        ref=ref(42), reference="P00042", state="to approve", vendor="Odoo partner #15", amount=Decimal("12500.0"), currency="",
        url="https://odoo.example.com/web#id=42&model=purchase.order&view_type=form", etag="2024-06-14 11:19:58",
    )


SETTINGS = OdooSettings(url="https://odoo.example.com", database="db", login="bot", api_key="k", webhook_secret="s")


def test_parses_the_webhook_an_automation_rule_posts():
    event = parse_webhook(FIXTURE.read_bytes(), SETTINGS, RECEIVED)
    assert event.ref == ref(42)
    assert event.dedup_key == "odoo:purchase.order:42:2024-06-14 11:19:58"
    assert event.received_at == RECEIVED
    assert event.hint == {"amount_total": 12500.0, "currency_id": 1, "date_order": "2024-06-14 09:12:00", "id": 42, "name": "P00042",
                          "partner_id": 15, "state": "to approve", "user_id": 7, "write_date": "2024-06-14 11:19:58"}


def test_a_redelivered_change_has_the_same_dedup_key_and_a_new_change_another():
    body = FIXTURE.read_bytes()
    again = parse_webhook(body, SETTINGS, RECEIVED).dedup_key
    assert parse_webhook(body, SETTINGS, RECEIVED).dedup_key == again
    changed = body.replace(b"2024-06-14 11:19:58", b"2024-06-14 12:00:00")
    assert parse_webhook(changed, SETTINGS, RECEIVED).dedup_key == "odoo:purchase.order:42:2024-06-14 12:00:00"


def test_without_write_date_the_body_itself_dedups():
    # An action with no fields selected posts only _model, _id and _action.
    body = b'{"_action": "Send Webhook Notification(#87)", "_id": 42, "_model": "purchase.order"}'
    key = parse_webhook(body, SETTINGS, RECEIVED).dedup_key
    assert key == parse_webhook(b'{"_model": "purchase.order", "_id": 42, "_action": "Send Webhook Notification(#87)"}', SETTINGS).dedup_key
    assert key.startswith("odoo:purchase.order:42:") and len(key.rsplit(":", 1)[1]) == 64
    assert key != parse_webhook(body.replace(b"#87", b"#88"), SETTINGS, RECEIVED).dedup_key


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"{not json", 400, "Odoo webhook body is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)). "
                        "Point an automation rule's \"Send Webhook Notification\" action at this URL."),
    (b"[42]", 400, "Odoo webhook body must be a JSON object, got list. Point an automation rule's \"Send Webhook Notification\" action at this URL."),
    (b"{}", 422, "Odoo webhook lacks _model and _id: this body did not come from a \"Send Webhook Notification\" action."),
    (b'{"_id": 42}', 422, "Odoo webhook lacks _model: this body did not come from a \"Send Webhook Notification\" action."),
    (b'{"_model": 7, "_id": 42}', 422, "Odoo webhook _model must be a model name such as \"purchase.order\", got 7."),
    (b'{"_model": "purchase.order", "_id": "42"}', 422, "Odoo webhook _id must be a positive record id, got '42'."),
    (b'{"_model": "purchase.order", "_id": true}', 422, "Odoo webhook _id must be a positive record id, got True."),
    (b'{"_model": "purchase.order", "_id": 42, "write_date": 20240614}', 422,
     "Odoo webhook write_date must be a \"YYYY-MM-DD HH:MM:SS\" string, got 20240614."),
])
def test_bad_webhooks_are_refused_with_the_reason(body, status, reason):
    with pytest.raises(BadEvent) as bad:
        parse_webhook(body, SETTINGS, RECEIVED)
    assert (bad.value.status, bad.value.reason) == (status, reason)


def test_a_model_nobody_routes_is_ignored():
    with pytest.raises(IgnoredEvent, match=r"^Odoo model res.partner is not routed \(HANDOFF_ODOO__MODELS is \['purchase.order'\]\)\.$"):
        parse_webhook(b'{"_model": "res.partner", "_id": 3}', SETTINGS, RECEIVED)


def test_settings_refuse_what_the_connector_cannot_do():
    with pytest.raises(ValidationError, match="Handoff can read only purchase.order from Odoo, not sale.order; remove them from HANDOFF_ODOO__MODELS"):
        OdooSettings(url="https://odoo.example.com", database="db", login="bot", api_key="k", webhook_secret="s", models=["sale.order"])
    with pytest.raises(ValidationError, match="is not an http"):
        OdooSettings(url="odoo.example.com", database="db", login="bot", api_key="k", webhook_secret="s")


def calls_made(fake: FakeOdoo, before: dict) -> dict:
    """Model calls since `before`; the one-off version probe (api "auto") is not a read."""
    return {call: n - before.get(call, 0) for call, n in fake.calls.items() if n != before.get(call, 0) and call != "web.version"}


async def test_an_order_is_read_in_four_calls_and_its_representative_once_a_minute(odoo):
    first = odoo.fake.add_purchase_order(lines=[("Bolts", 2, 5.0)], attachments=2)
    second = odoo.fake.add_purchase_order(lines=[("Nuts", 3, 1.0)], requester_login="marc@example.com")
    connector = odoo.connector()

    before = dict(odoo.fake.calls)
    record = await connector.fetch_record(ref(first))
    assert calls_made(odoo.fake, before) == {"purchase.order.read": 1, "purchase.order.line.read": 1, "res.users.read": 1,
                                             "purchase.order.search_count": 1}
    assert record.attachment_count == 2

    before = dict(odoo.fake.calls)
    again = await connector.fetch_record(ref(second))
    assert calls_made(odoo.fake, before) == {"purchase.order.read": 1, "purchase.order.line.read": 1, "purchase.order.search_count": 1}
    assert again.requester == record.requester and again.attachment_count == 0


async def test_a_renamed_representative_is_read_again_at_once(odoo):
    first = odoo.fake.add_purchase_order(lines=[("Bolts", 2, 5.0)], requester_login="marc@example.com")
    connector = odoo.connector()
    await connector.fetch_record(ref(first))
    user = odoo.fake.db.records["purchase.order"][first]["user_id"]
    odoo.fake.set_field("res.users", user, name="Marc Dubois-Martin", email="marc.dm@example.com")

    record = await connector.fetch_record(ref(first))

    assert record.requester == ErpPerson(name="Marc Dubois-Martin", login="marc@example.com", email="marc.dm@example.com")


async def test_an_untouched_order_is_confirmed_unchanged_by_one_read_of_the_order_and_one_of_its_lines(odoo):
    order = odoo.fake.add_purchase_order(lines=[("Bolts", 2, 5.0)], attachments=1)
    connector = odoo.connector()
    record = await connector.fetch_record(ref(order))
    before = dict(odoo.fake.calls)

    assert await connector.unchanged(record) is True

    made = {call: n - before.get(call, 0) for call, n in odoo.fake.calls.items() if n != before.get(call, 0)}
    assert made == {"purchase.order.read": 1, "purchase.order.line.read": 1}


async def test_a_line_description_edited_on_the_line_alone_is_a_change(odoo):
    order = odoo.fake.add_purchase_order(lines=[("Bolts", 2, 5.0)])
    connector = odoo.connector()
    record = await connector.fetch_record(ref(order))
    [line] = [id_ for id_, row in odoo.fake.db.records["purchase.order.line"].items() if row["order_id"] == order]
    odoo.fake.set_field("purchase.order.line", line, name="Bolts, stainless (refurbished)")
    assert odoo.fake.db.records["purchase.order"][order]["write_date"] == record.etag  # the order itself was not saved
    assert await connector.unchanged(record) is False


@pytest.mark.parametrize("change", [{"amount_total": 4100.0}, {"state": "cancel"}, {"name": "P00099"}])
async def test_an_order_saved_since_the_read_is_not_unchanged(odoo, change):
    order = odoo.fake.add_purchase_order(lines=[("Bolts", 2, 5.0)])
    connector = odoo.connector()
    record = await connector.fetch_record(ref(order))
    odoo.fake.set_field("purchase.order", order, **change)
    assert await connector.unchanged(record) is False


async def test_a_new_amount_in_the_same_second_as_the_read_is_still_a_change(odoo):
    # write_date reads at one-second precision, so a save in the second of the read keeps it.
    order = odoo.fake.add_purchase_order(lines=[("Bolts", 2, 5.0)])
    connector = odoo.connector()
    record = await connector.fetch_record(ref(order))
    odoo.fake.set_field("purchase.order", order, amount_total=11.0)
    odoo.fake.db.records["purchase.order"][order]["write_date"] = record.etag
    assert await connector.unchanged(record) is False


async def test_a_record_known_only_from_a_webhook_without_write_date_cannot_be_checked(odoo):
    order = odoo.fake.add_purchase_order()
    record = (await odoo.connector().fetch_record(ref(order))).model_copy(update={"etag": None})
    assert await odoo.connector().unchanged(record) is None


async def test_a_decided_order_says_when_it_was_decided(odoo):
    approved, cancelled = odoo.fake.add_purchase_order(amount=900), odoo.fake.add_purchase_order(amount=900)
    connector = odoo.connector()

    after_approve = await connector.write_decision(await connector.fetch_record(ref(approved)), decision(Verb.APPROVE))
    after_cancel = await connector.write_decision(await connector.fetch_record(ref(cancelled)), decision(Verb.REJECT, "No."))

    # button_approve stamps date_approve; a cancel stamps nothing of its own, so its last save stands for it.
    rows = odoo.fake.db.records["purchase.order"]
    assert after_approve.decided_at.strftime("%Y-%m-%d %H:%M:%S") == rows[approved]["date_approve"]
    assert after_cancel.decided_at.strftime("%Y-%m-%d %H:%M:%S") == rows[cancelled]["write_date"]
    assert after_approve.decided_at.utcoffset().total_seconds() == 0
    assert (await connector.fetch_record(ref(odoo.fake.add_purchase_order(amount=5)))).decided_at is None
