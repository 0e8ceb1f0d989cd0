"""`handoff dataverse register` against the fake Web API: endpoint, Update step and post image, idempotently."""

from __future__ import annotations

import json

import pytest

from handoff.bot.admin.dataverse_register import register
from handoff.bot.core.errors import ErpRefused

PUBLIC_URL = "https://handoff.example.com"
WEBHOOK_KEY = "dataverse-hook-key"  # the key the fixture configures


async def test_first_run_registers_a_webhook_that_fires_on_the_status_column(dataverse):
    lines = await register(dataverse.api(), dataverse.settings, PUBLIC_URL)

    (endpoint,) = dataverse.fake.webhook_registrations()
    assert (endpoint["name"], endpoint["contract"], endpoint["authtype"]) == ("Handoff", 8, 4)
    assert (endpoint["url"], endpoint["authvalue"]) == (f"{PUBLIC_URL}/webhooks/dataverse", WEBHOOK_KEY)
    (step,) = endpoint["steps"]
    assert (step["stage"], step["mode"], step["filteringattributes"]) == (40, 1, "statuscode")
    update = dataverse.fake.rows["sdkmessages"][step["_sdkmessageid_value"]]["name"]
    target = dataverse.fake.rows["sdkmessagefilters"][step["_sdkmessagefilterid_value"]]["primaryobjecttypecode"]
    assert (update, target) == ("Update", "purchaseorder")
    (image,) = step["images"]
    assert (image["imagetype"], image["entityalias"], image["messagepropertyname"]) == (1, "PostImage", "Target")
    assert lines == [
        f"webhook: registered service endpoint {endpoint['serviceendpointid']} posting to {PUBLIC_URL}/webhooks/dataverse",
        f"purchaseorder: registered step {step['sdkmessageprocessingstepid']} (asynchronous, post-operation, on Update of "
        "statuscode, with a post image)",
    ]
    assert WEBHOOK_KEY not in "\n".join(lines)


async def test_second_run_changes_nothing(dataverse):
    await register(dataverse.api(), dataverse.settings, PUBLIC_URL)
    before = json.dumps(dataverse.fake.webhook_registrations(), sort_keys=True)

    lines = await register(dataverse.api(), dataverse.settings, PUBLIC_URL)

    assert [line.split(" (")[0] for line in lines] == ["webhook: already registered", "purchaseorder: already registered"]
    assert json.dumps(dataverse.fake.webhook_registrations(), sort_keys=True) == before


async def test_a_new_public_url_updates_the_endpoint_in_place(dataverse):
    await register(dataverse.api(), dataverse.settings, PUBLIC_URL)

    lines = await register(dataverse.api(), dataverse.settings, "https://approvals.example.org")

    (endpoint,) = dataverse.fake.webhook_registrations()
    assert endpoint["url"] == "https://approvals.example.org/webhooks/dataverse"
    assert len(endpoint["steps"]) == 1
    assert lines[0].startswith(f"webhook: update service endpoint {endpoint['serviceendpointid']} to post to https://approvals")


async def test_dry_run_writes_nothing(dataverse):
    lines = await register(dataverse.api(), dataverse.settings, PUBLIC_URL, dry_run=True)

    assert lines == [f"webhook: would register service endpoint \"Handoff\" posting to {PUBLIC_URL}/webhooks/dataverse",
                     "purchaseorder: would register an asynchronous Update step on statuscode with a post image"]
    assert dataverse.fake.webhook_registrations() == []


async def test_missing_privileges_name_the_security_role_to_add(dataverse):
    dataverse.fake.denied_tables.add("serviceendpoints")

    with pytest.raises(ErpRefused) as refused:
        await register(dataverse.api(), dataverse.settings, PUBLIC_URL)

    assert "needs the System Customizer or System Administrator security role" in str(refused.value)
    assert "prvReadserviceendpoint" in str(refused.value)
