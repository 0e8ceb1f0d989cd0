"""The Dataverse fake's change tracking answers as use-change-tracking-synchronize-data-external-systems.md shows."""

from __future__ import annotations

import re

import aiohttp
import pytest
from yarl import URL

from handoff.bot.fakes.stack import serve
from handoff.bot.fakes.stack_dataverse import dataverse_fakes
from handoff.connectors.dataverse import MsalTokenProvider

TRACK = {"Prefer": "odata.track-changes"}


@pytest.fixture
async def web_api(clock):
    async with dataverse_fakes(serve, clock) as (fake, _, settings, _), aiohttp.ClientSession() as session:
        token = await MsalTokenProvider(settings, verify=settings.ca_bundle).token()
        headers = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0", "Authorization": f"Bearer {token}"}
        yield fake, f"{settings.url}/api/data/v9.2", session, headers


async def test_a_tracked_read_gives_rows_and_a_delta_link_that_later_lists_changes_and_deletes(web_api):
    fake, api, session, headers = web_api
    kept = fake.add_purchase_order("PO-1", "Acme", "10.00")
    gone = fake.add_purchase_order("PO-2", "Acme", "20.00")

    async with session.get(f"{api}/purchaseorders", params={"$select": "ordernumber"}, headers={**headers, **TRACK}) as response:
        assert response.headers["Preference-Applied"] == "odata.track-changes"
        first = await response.json()
    assert sorted((row["ordernumber"], row["purchaseorderid"]) for row in first["value"]) == sorted([("PO-1", kept), ("PO-2", gone)])
    # "…accounts?$select=name,…&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44" in the docs
    assert re.fullmatch(rf"{re.escape(api)}/purchaseorders\?\$select=ordernumber&\$deltatoken=\d+%21\d\d%2F\d\d%2F\d{{4}}%20[\d%A]+",
                        first["@odata.deltaLink"])

    fake.update("purchaseorder", kept, totalamount=11.0)
    fake.delete("purchaseorder", gone)
    async with session.get(URL(first["@odata.deltaLink"], encoded=True), headers=headers) as response:
        delta = await response.json()

    assert delta["@odata.context"].endswith("/$metadata#purchaseorders(ordernumber)/$delta")
    assert [row.get("ordernumber") for row in delta["value"]] == ["PO-1", None]
    assert delta["value"][1] == {"@odata.context": f"{api}/$metadata#purchaseorders/$deletedEntity", "id": gone, "reason": "deleted"}
    async with session.get(URL(delta["@odata.deltaLink"], encoded=True), headers=headers) as response:
        assert (await response.json())["value"] == [], "nothing changed since the last delta link"


async def test_filters_and_untracked_tables_get_the_documented_refusals(web_api):
    fake, api, session, headers = web_api

    async with session.get(f"{api}/purchaseorders", params={"$filter": "statecode eq 0"}, headers={**headers, **TRACK}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == \
            'The "$filter" query parameter isn\'t supported when Change Tracking is enabled.'
    fake.stop_tracking_changes("purchaseorder")
    async with session.get(f"{api}/purchaseorders", headers={**headers, **TRACK}) as response:
        assert response.status == 400
        error = (await response.json())["error"]
        assert error == {"code": "0x80072491", "message": "Entity purchaseorder isn't enabled for change tracking."}
