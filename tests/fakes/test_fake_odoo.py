"""The fake Odoo answers as Odoo does on the wire: raw HTTP against it, checked against the documented shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handoff.bot.fakes.odoo import FakeOdoo
from handoff.bot.fakes.odoo_seed import demo_seed

FIXTURE = Path(__file__).parent.parent / "fixtures" / "odoo" / "webhook_purchase_order.json"
KEY = {"Authorization": "bearer fake-odoo-api-key"}


@pytest.fixture
def fake() -> FakeOdoo:
    return FakeOdoo(version=19)


@pytest.fixture
async def client(aiohttp_client, fake):
    return await aiohttp_client(fake.app)


async def json2(client, model: str, method: str, body: dict, headers: dict = KEY):
    response = await client.post(f"/json/2/{model}/{method}", json=body, headers=headers)
    return response.status, await response.json()


async def jsonrpc(client, service: str, method: str, args: list):
    response = await client.post("/jsonrpc", json={"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args}, "id": 7})
    assert response.status == 200
    return await response.json()


def without_debug(error: dict) -> dict:
    assert error.pop("debug").startswith("Traceback")
    return error


async def test_json2_refuses_a_wrong_key_as_odoo_19_documents(client):
    status, body = await json2(client, "res.partner", "search_read", {}, headers={"Authorization": "bearer nope"})
    assert status == 401
    assert without_debug(body) == {"name": "werkzeug.exceptions.Unauthorized", "message": "Invalid apikey",
                                   "arguments": ["Invalid apikey", 401], "context": {}}


async def test_json2_reads_like_odoo(client, fake):
    order = fake.add_purchase_order(name="P00042", vendor="Acme Supplies", amount=100)
    status, rows = await json2(client, "purchase.order", "read", {"ids": [order, 999], "fields": ["name", "partner_id"]})
    assert status == 200
    assert rows == [{"id": order, "name": "P00042", "partner_id": [fake.add_partner("Acme Supplies"), "Acme Supplies"]}]
    _, bare = await json2(client, "purchase.order", "read", {"ids": [order], "fields": ["partner_id"], "load": None})
    assert bare == [{"id": order, "partner_id": fake.add_partner("Acme Supplies")}]


@pytest.mark.parametrize(("method", "body", "status", "message"), [
    ("search_count", {"ids": [1], "domain": []}, 422, "cannot call purchase.order.search_count with ids"),
    ("read", {"ids": [1], "badparameter": 1}, 422, "got an unexpected keyword argument 'badparameter'"),
    ("fly", {}, 404, "The method 'fly' does not exist on the model 'purchase.order'"),
])
async def test_json2_errors_carry_real_statuses(client, method, body, status, message):
    got_status, error = await json2(client, "purchase.order", method, body)
    assert (got_status, error["message"]) == (status, message)


async def test_json2_wants_a_json_object_by_post(client):
    response = await client.post("/json/2/purchase.order/read", data=b"[1]", headers={**KEY, "Content-Type": "application/json"})
    assert (response.status, (await response.json())["message"]) == (400, "could not parse the body, expecting a json object")
    response = await client.get("/json/2/purchase.order/read", headers=KEY)
    assert response.status == 405


async def test_json2_and_web_version_exist_from_odoo_19_only(aiohttp_client):
    old = await aiohttp_client(FakeOdoo(version=18).app)
    assert (await old.post("/json/2/purchase.order/read", json={}, headers=KEY)).status == 404
    assert (await old.get("/web/version")).status == 404
    new = await aiohttp_client(FakeOdoo(version=19).app)
    assert await (await new.get("/web/version")).json() == {"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}


async def test_jsonrpc_common_service(client, fake):
    version = await jsonrpc(client, "common", "version", [])
    assert version == {"jsonrpc": "2.0", "id": 7, "result": {"server_version": "19.0", "server_version_info": [19, 0, 0, "final", 0, ""],
                                                            "server_serie": "19.0", "protocol_version": 1}}
    assert (await jsonrpc(client, "common", "authenticate", ["handoff", "handoff-bot", "fake-odoo-api-key", {}]))["result"] == fake.api_uid
    assert (await jsonrpc(client, "common", "authenticate", ["handoff", "handoff-bot", "wrong", {}]))["result"] is False


async def test_jsonrpc_errors_are_http_200_error_objects(client, fake):
    answer = await jsonrpc(client, "object", "execute_kw", ["handoff", fake.api_uid, "wrong", "purchase.order", "read", [[1]], {}])
    error = answer["error"]
    assert (answer["id"], error["code"], error["message"]) == (7, 200, "Odoo Server Error")
    assert without_debug(error["data"]) == {"name": "odoo.exceptions.AccessDenied", "message": "Access Denied", "arguments": ["Access Denied"], "context": {}}


async def test_message_post_answers_an_id_list_on_json2_and_an_id_on_jsonrpc(client, fake):
    order = fake.add_purchase_order(amount=10)
    _, ids = await json2(client, "purchase.order", "message_post", {"ids": [order], "body": "a", "message_type": "comment"})
    answer = await jsonrpc(client, "object", "execute_kw", ["handoff", fake.api_uid, fake.api_key, "purchase.order", "message_post", [[order]],
                                                           {"body": "b", "message_type": "comment", "subtype_xmlid": "mail.mt_note"}])
    assert isinstance(ids, list) and isinstance(answer["result"], int)
    assert answer["result"] == ids[0] + 1


@pytest.mark.parametrize(("validation", "amount", "manager", "state"), [
    ("one_step", 12500, False, "purchase"),
    ("two_step", 4999, False, "purchase"),
    ("two_step", 5000, False, "to approve"),
    ("two_step", 12500, True, "purchase"),
])
async def test_button_approve_follows_double_validation(client, fake, validation, amount, manager, state):
    fake.add_company("Co", double_validation=validation, threshold=5000)
    fake.set_purchase_manager(manager)
    order = fake.add_purchase_order(amount=amount, company="Co")
    status, result = await json2(client, "purchase.order", "button_approve", {"ids": [order]})
    assert (status, result) == (200, {})
    assert fake.db.records["purchase.order"][order]["state"] == state


async def test_search_count_understands_the_usual_operators(client, fake):
    orders = [fake.add_purchase_order(amount=a, state=s) for a, s in ((100, "draft"), (200, "purchase"), (300, "cancel"))]

    async def count(domain):
        return (await json2(client, "purchase.order", "search_count", {"domain": domain}))[1]

    assert await count([["state", "in", ["draft", "purchase"]]]) == 2
    assert await count([["state", "not in", ["cancel"]], ["amount_total", ">=", 200]]) == 1
    assert await count(["&", ["id", "!=", orders[0]], ["amount_total", "<", 300]]) == 1
    assert await count([["amount_total", "=", 100], ["amount_total", ">", 100]]) == 0
    status, error = await json2(client, "purchase.order", "search_count", {"domain": ["|", ["id", "=", 1], ["id", "=", 2]]})
    assert status == 500 and "only implicit AND" in error["message"]


async def test_faults_on_demand(client, fake):
    fake.fail_next(1, status=429, retry_after=3)
    throttled = await client.get("/web/version")
    assert (throttled.status, throttled.headers["Retry-After"]) == (429, "3")
    assert (await client.get("/web/version")).status == 200
    fake.down = True
    assert (await client.post("/jsonrpc", json={})).status == 503


def test_webhook_body_is_what_odoo_posts(fake):
    order = fake.add_purchase_order(name="P00042", amount=12500, date_order="2024-06-14 09:12:00")
    body = fake.webhook_body(order)
    posted, documented = json.loads(body), json.loads(FIXTURE.read_text())
    assert body == json.dumps(posted, sort_keys=True).encode()
    assert posted.keys() == documented.keys()
    assert {k: type(v) for k, v in posted.items()} == {k: type(v) for k, v in documented.items()}
    assert (posted["_id"], posted["id"], posted["_action"], posted["partner_id"]) == (order, order, "Send Webhook Notification(#87)",
                                                                                      fake.add_partner("Acme Supplies"))


def test_set_field_moves_write_date_on(fake):
    order = fake.add_purchase_order(amount=10)
    before = fake.db.records["purchase.order"][order]["write_date"]
    fake.set_field("purchase.order", order, amount_total=20.0)
    assert fake.db.records["purchase.order"][order]["write_date"] > before


def test_demo_seed_has_orders_waiting_and_one_without_attachment(fake):
    ids = demo_seed(fake)
    orders = fake.db.records["purchase.order"]
    waiting = sorted(orders[i]["name"] for i in ids.values() if orders[i]["state"] == "to approve")
    assert waiting == ["P00042", "P00043", "P00044", "P00045"]
    attached = {a["res_id"] for a in fake.db.records["ir.attachment"].values()}
    assert [orders[i]["name"] for i in ids.values() if orders[i]["state"] == "to approve" and i not in attached] == ["P00044"]
    assert fake.db.find("res.users", login="marc@example.com")
