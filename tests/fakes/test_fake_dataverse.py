"""The Dataverse and Entra fakes answer as the documented services do: tokens, ETags, 412, 429, counts, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from yarl import URL

from handoff.bot.fakes.dataverse import FakeDataverse
from handoff.bot.fakes.entra import FakeEntra

FIXTURE = Path(__file__).parent.parent / "fixtures" / "dataverse" / "webhook_update_purchaseorder.json"
TENANT = "contoso.onmicrosoft.com"
JSON = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}


@pytest.fixture
async def stack(aiohttp_client, clock):
    entra = FakeEntra(clock, tenant=TENANT)
    entra.register("app-1", "secret-1")
    fake = FakeDataverse(entra, clock)
    return entra, await aiohttp_client(entra.app), fake, await aiohttp_client(fake.app)


async def token(entra_client, audience: str, secret: str = "secret-1") -> tuple[int, dict]:
    form = {"client_id": "app-1", "client_secret": secret, "scope": f"{audience}/.default", "grant_type": "client_credentials"}
    response = await entra_client.post(f"/{TENANT}/oauth2/v2.0/token", data=form)
    return response.status, await response.json()


async def bearer(stack) -> dict:
    _, entra_client, _, dataverse = stack
    _, body = await token(entra_client, str(dataverse.make_url("")).rstrip("/"))
    return {**JSON, "Authorization": f"Bearer {body['access_token']}"}


async def test_entra_issues_client_credential_tokens_and_says_why_it_refuses(stack):
    entra, entra_client, _, _ = stack

    status, issued = await token(entra_client, "https://contoso.crm.dynamics.com")
    wrong_status, wrong = await token(entra_client, "https://contoso.crm.dynamics.com", secret="nope")
    discovery = await (await entra_client.get(f"/{TENANT}/v2.0/.well-known/openid-configuration")).json()

    assert status == 200 and set(issued) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert (issued["token_type"], issued["expires_in"]) == ("Bearer", 3599)
    assert wrong_status == 401 and wrong["error"] == "invalid_client" and wrong["error_codes"] == [7000215]
    assert set(wrong) == {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id"}
    assert discovery["token_endpoint"] == str(entra_client.make_url(f"/{TENANT}/oauth2/v2.0/token"))
    assert entra.token_requests == 2


async def test_the_web_api_takes_only_unexpired_tokens_issued_for_its_own_url(stack, clock):
    _, entra_client, fake, dataverse = stack
    order = fake.add_purchase_order("PO-1", "Acme", "10.00")
    path = f"/api/data/v9.2/purchaseorders({order})"
    _, elsewhere = await token(entra_client, "https://other.crm.dynamics.com")
    headers = await bearer(stack)

    assert (await dataverse.get(path, headers=JSON)).status == 401
    assert (await dataverse.get(path, headers={**JSON, "Authorization": f"Bearer {elsewhere['access_token']}"})).status == 401
    assert (await dataverse.get(path, headers=headers)).status == 200
    clock.advance(hours=1)
    assert (await dataverse.get(path, headers=headers)).status == 401


async def test_if_match_guards_updates_with_the_documented_412(stack):
    _, _, fake, dataverse = stack
    order = fake.add_purchase_order("PO-1", "Acme", "10.00")
    path = f"/api/data/v9.2/purchaseorders({order})"
    headers = await bearer(stack)
    etag = (await (await dataverse.get(path, headers=headers)).json())["@odata.etag"]
    fake.update("purchaseorder", order, totalamount=11.0)

    stale = await dataverse.patch(path, json={"statuscode": 100000002}, headers={**headers, "If-Match": etag})
    forced = await dataverse.patch(path, json={"statuscode": 100000002}, headers={**headers, "If-Match": "*"})
    missing = await dataverse.patch("/api/data/v9.2/purchaseorders(00000000-0000-0000-0000-000000000001)",
                                    json={"statuscode": 1}, headers={**headers, "If-Match": "*"})

    assert stale.status == 412
    assert await stale.json() == {"error": {
        "code": "0x80060882", "message": "The version of the existing record doesn't match the RowVersion property provided."}}
    assert forced.status == 204 and forced.headers["OData-EntityId"].endswith(f"/api/data/v9.2/purchaseorders({order})")
    assert missing.status == 404
    assert fake.row("purchaseorder", order)["statuscode"] == 100000002


async def test_counts_filters_and_pages_like_the_web_api(stack):
    _, _, fake, dataverse = stack
    for n in range(3):
        fake.add_purchase_order(f"PO-{n}", "Acme", "10.00")
    fake.add_purchase_order("PO-9", "Other", "10.00")
    vendor = next(r["_vendorid_value"] for r in fake.rows["purchaseorders"].values() if r["ordernumber"] == "PO-0")
    headers = {**await bearer(stack), "Prefer": "odata.maxpagesize=2"}

    first = await (await dataverse.get("/api/data/v9.2/purchaseorders", headers=headers, params={
        "$select": "ordernumber", "$filter": f"_vendorid_value eq {vendor} and statecode eq 0", "$count": "true"})).json()
    rest = await (await dataverse.get(URL(first["@odata.nextLink"]).path_qs, headers=headers)).json()

    assert first["@odata.count"] == 3
    assert [r["ordernumber"] for r in first["value"] + rest["value"]] == ["PO-0", "PO-1", "PO-2"]
    assert "@odata.nextLink" not in rest


async def test_unknown_columns_and_tables_get_the_web_api_s_errors(stack):
    _, _, fake, dataverse = stack
    order = fake.add_purchase_order("PO-1", "Acme", "10.00")
    headers = await bearer(stack)

    column = await dataverse.get(f"/api/data/v9.2/purchaseorders({order})", params={"$select": "Name"}, headers=headers)
    segment = await dataverse.get("/api/data/v9.2/PurchaseOrders", headers=headers)

    assert column.status == 400
    assert (await column.json())["error"] == {
        "code": "0x0", "message": "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.purchaseorder'."}
    assert segment.status == 404
    assert await segment.json() == {"error": {"code": "0x8006088a", "message": "Resource not found for the segment 'PurchaseOrders'."}}


async def test_service_protection_answers_429_with_retry_after_until_the_window_moves(stack, clock):
    _, _, fake, dataverse = stack
    headers = await bearer(stack)
    fake.limit_requests(1, per_seconds=300)

    allowed = await dataverse.get("/api/data/v9.2/accounts", headers=headers)
    throttled = await dataverse.get("/api/data/v9.2/accounts", headers=headers)
    clock.advance(seconds=300)
    after = await dataverse.get("/api/data/v9.2/accounts", headers=headers)

    assert (allowed.status, throttled.status, after.status) == (200, 429, 200)
    assert throttled.headers["Retry-After"] == "300"
    assert (await throttled.json())["error"]["code"] == "0x80072322"


async def test_by_default_each_user_gets_6000_requests_per_5_minutes(stack, clock):
    _, _, fake, dataverse = stack
    headers = await bearer(stack)
    for n in range(5999):  # the window's count, not 5,999 HTTP calls: the 6000th and 6001st go over the wire
        assert fake.service_protection.retry_after("app-1") is None, f"request {n + 1} refused"
    clock.advance(seconds=10)

    last = await dataverse.get("/api/data/v9.2/accounts", headers=headers)
    over = await dataverse.get("/api/data/v9.2/accounts", headers=headers)

    assert (last.status, over.status) == (200, 429)
    assert over.headers["Retry-After"] == "290", "until the first of the 6000 leaves the 300 s window"
    assert await over.json() == {"error": {"code": "0x80072322",
                                           "message": "Number of requests exceeded the limit of 6000 over time window of 300 seconds."}}
    assert fake.rate_limited_count == 1


async def test_the_webhook_body_has_the_shape_of_the_shared_fixture(stack):
    _, _, fake, _ = stack
    order = fake.add_purchase_order("PO-000123", "Acme Supplies", "12500.00")
    real = json.loads(FIXTURE.read_bytes())

    made = json.loads(fake.webhook_body("purchaseorder", order))

    assert set(made) == set(real)
    assert set(made["PostEntityImages"][0]["value"]) == set(real["PostEntityImages"][0]["value"])
    assert set(made["InputParameters"][0]["value"]) == set(real["InputParameters"][0]["value"])
    post = {a["key"]: a["value"] for a in made["PostEntityImages"][0]["value"]["Attributes"]}
    assert post["totalamount"] == {"__type": "Money:http://schemas.microsoft.com/xrm/2011/Contracts", "Value": 12500.0}
    assert post["statuscode"]["Value"] == 100000001
