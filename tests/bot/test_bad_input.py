"""Bad, forged or replayed input gets a clear 4xx (or a logged ignore) — never a 500, never a lost event."""

from __future__ import annotations

import json
import time

import pytest



@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "object"),
        (json.dumps({"_id": 42, "write_date": "2024-06-14 11:19:58"}).encode(), 422, "_model"),
        (json.dumps({"_model": "purchase.order", "_id": "forty-two"}).encode(), 422, "_id"),
        (b'{"_model": "purchase.order", "_id": 42, "name": "\xff"}', 400, "not JSON"),
    ],
)
async def test_malformed_odoo_webhooks_get_a_clear_4xx(stack, body, status, reason):
    got, answer = await stack.post_webhook(body)
    assert got == status
    assert reason in answer["error"]
    assert stack.store.inbox_depth() == {}


async def test_a_model_nobody_routes_is_ignored_with_202(stack):
    body = json.dumps({"_model": "sale.order", "_id": 7, "_action": "Send Webhook Notification(#3)", "id": 7}).encode()
    status, answer = await stack.post_webhook(body)
    assert (status, answer["status"]) == (202, "ignored")


@pytest.mark.parametrize("key", ["", "wrong-secret", "local-webhook-secre"])
async def test_a_wrong_webhook_key_is_refused(stack, key):
    status, answer = await stack.post_webhook(stack.odoo.webhook_body(stack.orders["P00042"]), key=key)
    assert status == 401
    assert "?key=" in answer["error"]
    assert stack.store.inbox_depth() == {}


async def test_an_oversized_webhook_is_refused_with_413(stack):
    status, answer = await stack.post_webhook(b'{"_model": "purchase.order", "pad": "' + b"x" * 600_000 + b'"}')
    assert status == 413


async def test_a_valid_event_after_garbage_is_still_processed(stack):
    for junk in (b"", b"null", b"{\"_model\": null}", b"\xff\xfe"):
        await stack.post_webhook(junk)
    await stack.send_order("P00045")
    await stack.card("C0PROCURE", "P00045")


async def _slack_click_body(stack) -> bytes:
    await stack.send_order("P00045")
    card = await stack.card("C0PROCURE", "P00045")
    button = next(e for b in card.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "handoff.approve")
    return stack.signer.block_actions_body("U0DANA", "dana", card.channel, card.ts, "handoff.approve", button["value"],
                                           message=card.wire(stack.slack.workspace))


async def test_unsigned_slack_requests_are_refused(stack):
    body = await _slack_click_body(stack)
    status, _ = await stack.post_slack(body, headers={})
    assert status == 401


async def test_forged_slack_signatures_are_refused(stack):
    body = await _slack_click_body(stack)
    headers = stack.signer.sign(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    status, _ = await stack.post_slack(body, headers=headers)
    assert status == 401


async def test_replayed_slack_requests_outside_five_minutes_are_refused(stack):
    body = await _slack_click_body(stack)
    status, _ = await stack.post_slack(body, headers=stack.signer.sign(body, timestamp=int(time.time()) - 301))
    assert status == 401
    request = stack.store.find_requests("P00045")[0]
    assert not stack.store.votes(request.id)


async def test_a_tampered_body_under_a_valid_signature_is_refused(stack):
    body = await _slack_click_body(stack)
    headers = stack.signer.sign(body)
    status, _ = await stack.post_slack(body.replace(b"U0DANA", b"U0ERIK"), headers=headers)
    assert status == 401


@pytest.mark.parametrize("payload", ["payload=%7Bnot-json", "payload=%5B%5D", "", "payload=" + "%7B%22type%22%3A%22block_actions%22%7D"])
async def test_signed_garbage_to_slack_is_never_a_500(stack, payload):
    status, _ = await stack.post_slack(payload.encode())
    assert status < 500


async def test_healthz_reports_queues(stack):
    async with stack.http.get(f"{stack.handoff_url}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
