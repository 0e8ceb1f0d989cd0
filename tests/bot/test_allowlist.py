"""The webhook IP allow-list, over real HTTP on loopback."""

from __future__ import annotations

import pytest
from aiohttp import web

from handoff.bot.allowlist import networks, webhook_allow_list
from handoff.bot.config import Settings
from handoff.bot.core.errors import ConfigError


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "accepted"})


async def client_for(aiohttp_client, cidrs: list[str]):
    app = web.Application(middlewares=[webhook_allow_list(networks(cidrs))])
    app.router.add_post("/webhooks/odoo", ok)
    app.router.add_get("/healthz", ok)
    return await aiohttp_client(app)


async def test_a_webhook_from_outside_the_list_is_refused_with_403(aiohttp_client):
    client = await client_for(aiohttp_client, ["203.0.113.0/24", "2001:db8::/32"])
    response = await client.post("/webhooks/odoo", data=b"{}")
    assert response.status == 403
    assert await response.json() == {"error": "Webhooks are not accepted from 127.0.0.1. Add its network to HANDOFF_WEBHOOK_ALLOW_FROM."}
    assert (await client.get("/healthz")).status == 200, "only webhook paths are filtered"


@pytest.mark.parametrize("cidrs", [["127.0.0.0/8"], []])
async def test_a_webhook_from_an_allowed_network_or_with_no_list_passes(aiohttp_client, cidrs):
    client = await client_for(aiohttp_client, cidrs)
    assert (await client.post("/webhooks/odoo", data=b"{}")).status == 200


def test_the_list_comes_from_the_environment_as_json(monkeypatch):
    monkeypatch.setenv("HANDOFF_WEBHOOK_ALLOW_FROM", '["10.0.0.0/8", "192.168.1.7"]')
    assert [str(n) for n in networks(Settings().webhook_allow_from)] == ["10.0.0.0/8", "192.168.1.7/32"]


def test_a_typo_in_the_list_stops_the_service_at_start():
    with pytest.raises(ConfigError, match=r"^HANDOFF_WEBHOOK_ALLOW_FROM has '10\.0\.0\.0/33', which is not an IP network\."):
        networks(["10.0.0.0/33"])
