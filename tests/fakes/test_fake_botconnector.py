"""The local Bot Connector answers as the documented services do: OpenID keys, tokens, REST errors."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import jwt
import pytest

from handoff.bot.fakes.botconnector import FakeBotConnector

APP_ID, PASSWORD = "app-1", "secret"


@pytest.fixture
def fake(clock):
    with FakeBotConnector(APP_ID, PASSWORD, tenant_id="tenant-1", clock=clock).serve() as served:
        yield served


async def call(method: str, url: str, **kwargs) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, **kwargs) as response:
            return response.status, await response.json()


async def token(fake: FakeBotConnector) -> str:
    form = {"grant_type": "client_credentials", "client_id": APP_ID, "client_secret": PASSWORD,
            "scope": "https://api.botframework.com/.default"}
    status, body = await call("POST", fake.token_url(), data=form)
    assert status == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3599
    return body["access_token"]


async def test_issued_jwts_verify_with_the_published_endorsed_key(fake):
    _, metadata = await call("GET", fake.openid_metadata_url)
    _, keys = await call("GET", metadata["jwks_uri"])

    [key] = keys["keys"]
    assert metadata["issuer"] == "https://api.botframework.com" and key["endorsements"] == ["msteams"]
    claims = jwt.decode(fake.issue_token(), jwt.PyJWK(key).key, algorithms=["RS256"], audience=APP_ID)
    assert claims["serviceurl"] == fake.service_url and claims["iss"] == "https://api.botframework.com"


@pytest.mark.parametrize(("tenant", "secret", "status", "error"), [
    ("botframework.com", "wrong", 401, "invalid_client"),
    ("someone-elses-tenant", PASSWORD, 400, "invalid_request"),
])
async def test_the_token_endpoint_refuses_like_entra(fake, tenant, secret, status, error):
    form = {"grant_type": "client_credentials", "client_id": APP_ID, "client_secret": secret,
            "scope": "https://api.botframework.com/.default"}

    answered, body = await call("POST", fake.token_url(tenant), data=form)

    assert (answered, body["error"]) == (status, error)


async def test_rest_calls_need_a_token_from_the_token_endpoint(fake):
    fake.add_conversation("19:c@thread.tacv2")
    url = f"{fake.url}/v3/conversations/19:c@thread.tacv2/activities"

    assert (await call("POST", url, json={"type": "message"}))[0] == 401
    assert (await call("POST", url, json={"type": "message"}, headers={"Authorization": "Bearer forged"}))[0] == 401
    status, body = await call("POST", url, json={"type": "message"}, headers={"Authorization": f"Bearer {await token(fake)}"})
    assert status == 201 and fake.activity("19:c@thread.tacv2", body["id"])["type"] == "message"


async def test_unknown_conversations_and_uninstalled_people_get_teams_error_codes(fake):
    auth = {"Authorization": f"Bearer {await token(fake)}"}

    status, body = await call("POST", f"{fake.url}/v3/conversations/19:nowhere/activities", json={"type": "message"}, headers=auth)
    assert (status, body["error"]["code"]) == (404, "ConversationNotFound")
    status, body = await call("POST", f"{fake.url}/v3/conversations", headers=auth,
                              json={"isGroup": False, "members": [{"id": "29:stranger"}], "channelData": {"tenant": {"id": "tenant-1"}}})
    assert (status, body["error"]["code"]) == (403, "ForbiddenOperationException")


async def test_sends_to_one_conversation_are_refused_past_each_per_thread_window(clock):
    with FakeBotConnector(APP_ID, PASSWORD, require_auth=False, clock=clock).serve() as fake:
        fake.add_conversation("19:busy@thread.tacv2")
        fake.add_conversation("19:quiet@thread.tacv2")
        url = f"{fake.url}/v3/conversations/19:busy@thread.tacv2/activities"
        start = clock.now()

        async def send_at(seconds: float, to: str = url) -> tuple[int, dict]:
            clock.at = start + timedelta(seconds=seconds)
            async with aiohttp.ClientSession() as session:
                async with session.post(to, json={"type": "message", "text": "x"}) as response:
                    assert "Retry-After" not in response.headers  # rate-limit.md documents none
                    return response.status, await response.json()

        assert [(await send_at(0))[0] for _ in range(8)] == [201] * 7 + [429]  # 7 in 1 s
        assert [(await send_at(1.5))[0] for _ in range(2)] == [201, 429]  # 8 in 2 s
        for n in range(52):  # two a second stays inside both shorter windows, up to 60 in 30 s
            assert (await send_at(2 + n / 2))[0] == 201
        assert await send_at(29.9) == (429, {"error": {"code": "Throttled", "message": "Too many requests."}})
        assert (await send_at(29.9, f"{fake.url}/v3/conversations/19:quiet@thread.tacv2/activities"))[0] == 201
        assert (await send_at(30.0))[0] == 201, "the first send left the 30 s window"
        assert fake.rate_limited_count == 3
