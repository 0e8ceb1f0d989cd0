"""Slack's questions and commands: /handoff, mentions and DMs answered; the pending inbox, bulk approve, delegation, reassign.

Wire shapes: slash command responses may carry `blocks` and are ephemeral by default
(https://docs.slack.dev/interactivity/implementing-slash-commands, "response_type"); a users_select in a submitted
view reports `selected_user` (https://docs.slack.dev/reference/block-kit/block-elements/users-select-element);
user mentions in command text arrive as `<@U123|name>` when the command escapes them
(https://docs.slack.dev/interactivity/implementing-slash-commands, "escape_channels_users_and_links").
"""

from __future__ import annotations

import json
import logging
import re

from slack_bolt.async_app import AsyncApp

from handoff.bot.core import delegation, status
from handoff.bot.core import inbox as shared_inbox
from handoff.bot.core.context import Core
from handoff.bot.core.models import ChatIdentity, Person, RequestState
from handoff.bot.core.ports import Approvals
from handoff.bot.core.view import inert
from handoff.cards import blockkit
from handoff.cards.escape import escape_mrkdwn, slack_link, truncate

from .slack import SlackChannel, clicked_in, identity_of, parse_binding

log = logging.getLogger(__name__)

BULK_APPROVE, REASSIGN_MODAL = "handoff.bulk_approve", "handoff.reassign_modal"
# Two blocks per item and Slack's 50 blocks per message; the bulk button's value (max 2000 chars) holds them all.
INBOX_ITEMS = 15
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
DELEGATE_HELP = "Say `/handoff delegate @someone until 2026-12-01` (optionally `from 2026-11-24`), or `/handoff delegate off`."


def person_of(approvals: Approvals, user_id: str) -> Person | None:
    """The configured person behind a Slack user id, or None."""
    return approvals.person_for(ChatIdentity(platform="slack", user_id=user_id))


def reply(core: Core, approvals: Approvals, user_id: str, text: str) -> tuple[str, list[dict] | None]:
    """The answer to a question or command from `user_id`: plain text, or text plus Block Kit for the inbox."""
    person = person_of(approvals, user_id)
    kind, rest = status.intent(text)
    if kind is status.Intent.PENDING and person is not None:
        return inbox(core, person)
    if kind is status.Intent.DELEGATE:
        return delegate(core, approvals, person, rest), None
    return status.answer(core, person, text), None


def delegate(core: Core, approvals: Approvals, person: Person | None, text: str) -> str:
    """`@someone until YYYY-MM-DD [from YYYY-MM-DD]` or `off`, for the person asking."""
    if person is None:
        return status.UNKNOWN_PERSON
    if text.strip().lower() == "off":
        return delegation.revoke(core, person)
    mention = _MENTION.search(text)
    if mention is None:
        return f"Whom should your approvals go to? {DELEGATE_HELP}"
    delegate_to = person_of(approvals, mention.group(1))
    if delegate_to is None:
        # Named as typed, not as a live <@…> mention: replies pass through mrkdwn_message, which makes every < inert.
        who = inert(mention.group(2) or mention.group(1))
        return f"Handoff doesn't know {who}, so it can't route approvals to them. Ask an admin to add them to the routing config."
    try:
        until, starts = delegation.parse_window(_MENTION.sub("", text), DELEGATE_HELP)
    except ValueError as error:
        return str(error)
    return delegation.grant(core, person, delegate_to, until, starts)


def inbox(core: Core, person: Person) -> tuple[str, list[dict] | None]:
    """The person's pending decisions as a working inbox: each with its buttons, and Approve all for bulk rules."""
    title, shown = shared_inbox.pending(core, person, INBOX_ITEMS)
    if not shown:
        return title, None
    blocks: list[dict] = [{"type": "section", "block_id": "handoff.inbox", "text": _mrkdwn(f"*{escape_mrkdwn(title)}*")}]
    for request in shown:
        record = request.packet.record
        summary = escape_mrkdwn(status.line(core, request)) + (f" · {slack_link(record.url, 'Open record')}" if record.url else "")
        value = blockkit.binding(request.id, request.version, request.stage)
        blocks.append({"type": "section", "block_id": f"handoff.inbox.{request.id}", "text": _mrkdwn(truncate(summary, 3000))})
        blocks.append({"type": "actions", "block_id": f"handoff.inbox.{request.id}.actions", "elements": [
            blockkit.button("Approve", blockkit.APPROVE, value, "primary"),
            blockkit.button("Reject", blockkit.REJECT, value, "danger"),
            blockkit.button("Ask for info", blockkit.ASK_INFO, value),
            blockkit.button("Reassign", blockkit.REASSIGN, value),
        ]})
    bulk = shared_inbox.bulk_approvable(core, shown)
    if bulk:
        blocks.append({"type": "actions", "block_id": "handoff.inbox.bulk", "elements": [_bulk_button(bulk)]})
    return title, blocks


def _bulk_button(requests: list[RequestState]) -> dict:
    value = json.dumps(shared_inbox.items_of(requests), separators=(",", ":"))
    button = blockkit.button(f"Approve all {len(requests)}", BULK_APPROVE, value, "primary")
    # Block Kit confirmation dialog object: a second look before many approvals at once.
    button["confirm"] = {
        "title": {"type": "plain_text", "text": "Approve them all?"},
        "text": {"type": "plain_text", "text": f"Handoff approves these {len(requests)} one by one, re-checking each in the ERP."},
        "confirm": {"type": "plain_text", "text": "Approve all"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    return button


def _bulk_items(value: str) -> list[shared_inbox.Item]:
    """The [request, version, stage] triples a bulk button carries; [] when the value is not what Handoff wrote."""
    try:
        return shared_inbox.parse_items(json.loads(value))
    except ValueError:
        return []


def reassign_modal(request_id: str, version: int, stage: int, channel: str) -> dict:
    """Pick the one person who decides this stage instead."""
    return {
        "type": "modal", "callback_id": REASSIGN_MODAL,
        "title": {"type": "plain_text", "text": "Reassign"}, "submit": {"type": "plain_text", "text": "Reassign"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"r": request_id, "v": version, "s": stage, "channel": channel}, separators=(",", ":")),
        "blocks": [{"type": "input", "block_id": "assignee_block", "label": {"type": "plain_text", "text": "Who decides instead?"},
                    "element": {"type": "users_select", "action_id": "assignee"}}],
    }


def register_commands(app: AsyncApp, core: Core, approvals: Approvals, channel: SlackChannel) -> None:
    """The bulk approve and reassign listeners (slack.py answers /handoff, mentions and DMs with `reply`)."""

    later = core.followups.start

    @app.action(BULK_APPROVE)
    async def on_bulk(ack, body, action):
        await ack()
        later(bulk(body, action), "slack approve all")

    async def bulk(body: dict, action: dict) -> None:
        items = _bulk_items(action.get("value", ""))
        if items:
            text = shared_inbox.bulk_report(core, items, await shared_inbox.bulk_approve(approvals, identity_of(body), items))
        else:
            text = "This Approve all button is unreadable, so nothing was approved. Ask `pending` again for a fresh inbox."
        channel_id = clicked_in(body)
        if channel_id:
            await channel.whisper(channel_id, body["user"]["id"], text)

    @app.action(blockkit.REASSIGN)
    async def on_reassign(ack, body, action):
        await ack()
        request_id, version, stage = parse_binding(action["value"])
        channel_id = (body.get("container") or {}).get("channel_id", "")
        later(channel.call("views.open", trigger_id=body["trigger_id"], view=reassign_modal(request_id, version, stage, channel_id)),
              "slack reassign modal")

    @app.view(REASSIGN_MODAL)
    async def on_reassign_submit(ack, body, view):
        meta = json.loads(view["private_metadata"])
        picked = (view["state"]["values"].get("assignee_block", {}).get("assignee") or {}).get("selected_user")
        to = person_of(approvals, picked or "")
        if to is None:
            await ack(response_action="errors", errors={"assignee_block": "Handoff doesn't know this person: pick someone in the routing config."})
            return
        await ack()
        later(reassign(body, meta, to), "slack reassign")

    async def reassign(body: dict, meta: dict, to: Person) -> None:
        by, request = person_of(approvals, body["user"]["id"]), core.store.get_request(meta["r"])
        if by is None or request is None:
            text = status.UNKNOWN_PERSON if by is None else "Handoff has no record of this request."
        elif request.stage != meta["s"]:
            text = f"Stage {meta['s'] + 1} of {inert(request.reference)} is already decided; nothing was reassigned."
        else:
            text = delegation.reassign(core, request, by, to)
        if meta.get("channel"):
            await channel.whisper(meta["channel"], body["user"]["id"], text)


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text, "verbatim": True}
