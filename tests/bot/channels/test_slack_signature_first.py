"""/slack/events checks Slack's signature before it parses anything (found by tests/bot/test_openapi_fuzz.py)."""

from __future__ import annotations

import logging

import pytest


UNSIGNED_401 = {"error": "The request is not signed by Slack with this app's signing secret, or was signed more than 5 minutes ago."}


@pytest.mark.parametrize("body, content_type, headers", [
    # Unsigned garbage bolt cannot parse was a 400 before: strangers could probe the parser.
    (b"payload=%7Bnot-json", "application/x-www-form-urlencoded", {}),
    (b"[1, 2]", "application/json", {}),
    # The SDK's verifier raises on these (int() of the timestamp, UTF-8 decoding, compare_digest of non-ASCII).
    (b'{"type": "url_verification", "challenge": "c"}', "application/json",
     {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}),
    (b"\xff\xfe", "application/json", {"X-Slack-Request-Timestamp": "NOW", "X-Slack-Signature": "v0=00"}),
], ids=["broken-form-payload", "json-list", "timestamp-not-a-number", "body-not-utf8"])
async def test_a_request_without_a_valid_signature_is_a_401_whatever_its_body(stack, caplog, body, content_type, headers):
    caplog.set_level(logging.WARNING)
    async with stack.http.post(f"{stack.handoff_url}/slack/events", data=body, headers={"Content-Type": content_type, **headers}) as response:
        assert response.status == 401
        assert await response.json() == UNSIGNED_401
    assert "slack.unauthorized" in [r.getMessage() for r in caplog.records]


async def test_a_non_ascii_signature_is_a_401(stack):
    body = b'{"type": "url_verification", "challenge": "c"}'
    headers = {**stack.signer.sign(body), "X-Slack-Signature": "v0=\u00e9\u00e9"}
    async with stack.http.post(f"{stack.handoff_url}/slack/events", data=body,
                               headers={"Content-Type": "application/json", **headers}) as response:
        assert response.status == 401


async def test_signed_garbage_is_still_a_400(stack):
    body = b"[1, 2]"
    status, text = await stack.post_slack(body, "application/json")
    assert (status, text) == (400, '{"error": "Unreadable Slack request body."}')
