"""/api/messages refuses a request without a token before it reads the body (found by tests/bot/test_openapi_fuzz.py)."""

from __future__ import annotations

import logging

import pytest

from handoff.bot.fakes.stack import local_stack


@pytest.fixture
async def teams(tmp_path):
    async with local_stack(tmp_path / "handoff.db", chat="teams") as running:
        yield running.teams


@pytest.mark.parametrize("body, content_type", [
    (b"not json", "application/json"),  # was 400 "not valid JSON": the parser answered strangers
    (b'{"type": "message"}', "application/json"),  # was 400 "not a Bot Framework activity"
    (b"type=message", "application/x-www-form-urlencoded"),  # was 415
], ids=["not-json", "not-an-activity", "not-json-at-all"])
async def test_without_a_token_every_body_is_a_401(teams, caplog, body, content_type):
    caplog.set_level(logging.WARNING)
    async with teams.http.post(teams.endpoint, data=body, headers={"Content-Type": content_type}) as response:
        assert response.status == 401
        assert await response.json() == {"error": "The request is not signed by the Bot Framework for this bot."}
    assert "teams.unauthorized" in [r.getMessage() for r in caplog.records]


async def test_with_a_token_a_body_that_is_not_an_activity_is_still_a_400(teams):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {teams.connector.issue_token(service_url=teams.service_url)}"}
    async with teams.http.post(teams.endpoint, data=b'{"type": "message"}', headers=headers) as response:
        assert response.status == 400
