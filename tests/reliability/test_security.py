"""No one in who doesn't belong: signatures and replays, webhook keys, body limits, forged identities, secrets, escaping."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs, urlencode

import pytest

from handoff.bot.fakes.stack import SIGNING_SECRET, WEBHOOK_SECRET
from handoff.bot.fakes.slack import SlackSigner
from handoff.bot.fakes.waiting import wait_until
from handoff.state import decision_log

PROCUREMENT = "C0PROCURE"


async def a_card(stack, reference: str = "P00043"):
    await stack.send_order(reference)
    return await stack.card(PROCUREMENT, reference)


def click_body(stack, person: str, card, user_id: str | None = None) -> bytes:
    button = next(e for b in card.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "handoff.approve")
    return stack.signer.block_actions_body(user_id or stack.slack_id(person), person, card.channel, card.ts,
                                           "handoff.approve", button["value"], message=card.wire(stack.slack.workspace))


async def test_a_replayed_slack_request_is_refused(stack):
    card = await a_card(stack)
    body = click_body(stack, "erik", card)
    six_minutes_ago = int(time.time()) - 6 * 60  # bolt accepts a 5-minute window (slack_sdk SignatureVerifier)
    status, _ = await stack.post_slack(body, headers=stack.signer.sign(body, timestamp=six_minutes_ago))
    assert status == 401
    await stack.settled()
    assert stack.odoo.calls["purchase.order.button_approve"] == 0


async def test_a_forged_slack_request_is_refused(stack):
    card = await a_card(stack)
    body = click_body(stack, "erik", card)
    forged = SlackSigner("not-the-signing-secret", workspace=stack.slack.workspace).sign(body)
    assert (await stack.post_slack(body, headers=forged))[0] == 401
    assert (await stack.post_slack(body, headers={}))[0] == 401
    assert stack.odoo.calls["purchase.order.button_approve"] == 0


async def test_changing_user_id_in_a_signed_click_breaks_the_signature(stack):
    card = await a_card(stack)
    body = click_body(stack, "gus", card)
    headers = stack.signer.sign(body)
    payload = parse_qs(body.decode())["payload"][0].replace(stack.slack_id("gus"), stack.slack_id("erik"))
    assert (await stack.post_slack(urlencode({"payload": payload}).encode(), headers=headers))[0] == 401
    await stack.settled()
    assert stack.odoo.calls["purchase.order.button_approve"] == 0


async def test_a_signed_click_by_someone_outside_the_role_is_not_counted(stack):
    card = await a_card(stack)
    assert (await stack.post_slack(click_body(stack, "gus", card)))[0] == 200
    told = await wait_until(lambda: stack.whispers_to("gus"), what="Gus's private reply")
    assert told == ["Only Procurement manager can decide stage 1 of P00043."]
    stack.slack.add_user("U0MALLORY", "mallory")  # in the workspace, unknown to the routing config
    stranger = click_body(stack, "mallory", card, user_id="U0MALLORY")
    assert (await stack.post_slack(stranger))[0] == 200
    await stack.settled()
    assert stack.odoo.calls["purchase.order.button_approve"] == 0
    assert stack.odoo.db.records["purchase.order"][stack.orders["P00043"]]["state"] == "to approve"


async def test_a_wrong_webhook_key_is_refused(stack):
    status, body = await stack.post_webhook(stack.odoo.webhook_body(stack.orders["P00043"]), key="guess")
    assert status == 401
    assert body == {"error": "Wrong or missing webhook key: the URL must end with ?key=<the configured webhook secret>."}
    await stack.settled()
    assert stack.store.inbox_depth() == {}


@pytest.mark.parametrize("path", ["/webhooks/odoo", "/slack/events"])
async def test_a_body_over_the_limit_is_refused_with_413(stack, path):
    huge = b'{"_model": "purchase.order", "_id": 1, "pad": "' + b"x" * (600 * 1024) + b'"}'
    url = stack.webhook_url() if path == "/webhooks/odoo" else f"{stack.handoff_url}{path}"
    async with stack.http.post(url, data=huge, headers={"Content-Type": "application/json", **stack.signer.sign(huge)}) as response:
        assert response.status == 413
    await stack.settled()
    assert stack.store.inbox_depth() == {}


async def test_secrets_never_reach_the_logs_cards_or_exports(stack, caplog):
    caplog.set_level(logging.DEBUG)
    await stack.post_webhook(stack.odoo.webhook_body(stack.orders["P00043"]), key="guess")
    card = await a_card(stack)
    await stack.click("erik", card, "handoff.approve")
    await wait_until(lambda: stack.odoo.db.records["purchase.order"][stack.orders["P00043"]]["state"] == "purchase",
                     what="the approval in Odoo")
    await stack.settled()
    posted = [str(m.blocks) + m.text for messages in stack.slack.messages.values() for m in messages]
    exports = [decision_log.export(stack.store.conn, "jsonl"), decision_log.export(stack.store.conn, "csv")]
    lines = [caplog.text] + [str(vars(record)) for record in caplog.records] + posted + exports
    secrets = {"signing secret": SIGNING_SECRET, "webhook key": WEBHOOK_SECRET, "bot token": stack.slack.token,
               "Odoo API key": stack.odoo.api_key}
    leaked = {name for name, secret in secrets.items() if any(secret in line for line in lines)}
    assert not leaked
    assert any(record.getMessage() == "http.request" for record in caplog.records), "access lines were captured too"


async def test_erp_content_cannot_ping_or_phish_from_a_slack_card(stack):
    order = stack.odoo.add_purchase_order(name="P00066", vendor="<!channel> [click](http://evil.example)",
                                          lines=[("<@U0DANA> *urgent*", 1, 100.0)], attachments=1)
    await stack.post_webhook(stack.odoo.webhook_body(order))
    card = await stack.card(PROCUREMENT, "P00066")
    shown = str(card.blocks) + card.text
    assert "<!channel>" not in shown and "<@U0DANA>" not in shown
    assert "<http://evil.example" not in shown, "no live link made of vendor text"
    assert "&lt;!channel&gt;" in shown, "the vendor name is still shown, as text"
