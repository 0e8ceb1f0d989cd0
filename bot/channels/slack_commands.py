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
from datetime import date

from slack_bolt.async_app import AsyncApp

from handoff.bot.core import delegation, status
from handoff.bot.core.context import Core
from handoff.bot.core.models import Action, ChatIdentity, Outcome, Person, RequestState, Verb
from handoff.bot.core.ports import Approvals
from handoff.cards import blockkit
from handoff.cards.escape import escape_mrkdwn, slack_link, truncate

from .slack import REASSIGN, SlackChannel, identity_of, parse_binding

log = logging.getLogger(__name__)

BULK_APPROVE, REASSIGN_MODAL = "handoff.bulk_approve", "handoff.reassign_modal"
# Two blocks per item and Slack's 50 blocks per message; the bulk button's value (max 2000 chars) holds them all.
INBOX_ITEMS = 15
COUNTED = {Outcome.RECORDED, Outcome.STAGE_DECIDED, Outcome.REQUEST_DECIDED}
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_DATE = re.compile(r"\b(until|from)\s+(\S+)", re.IGNORECASE)
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
        return f"Handoff doesn't know <@{mention.group(1)}>, so it can't route approvals to them. Ask an admin to add them to the routing config."
    dates: dict[str, date] = {}
    for word, value in _DATE.findall(_MENTION.sub("", text)):
        try:
            dates[word.lower()] = date.fromisoformat(value)
        except ValueError:
            return f"“{value}” is not a date Handoff reads. Write it as YYYY-MM-DD. {DELEGATE_HELP}"
    if "until" not in dates:
        return f"Until when? {DELEGATE_HELP}"
    return delegation.grant(core, person, delegate_to, dates["until"], dates.get("from"))


def inbox(core: Core, person: Person) -> tuple[str, list[dict] | None]:
    """The person's pending decisions as a working inbox: each with its buttons, and Approve all for bulk rules."""
    waiting = status.pending_for(core, person)
    if not waiting:
        return "Nothing waits for your decision.", None
    shown = waiting[:INBOX_ITEMS]
    more = f" Showing the oldest {len(shown)}." if len(waiting) > len(shown) else ""
    title = f"{len(waiting)} waiting for your decision.{more}"
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
            blockkit.button("Reassign", REASSIGN, value),
        ]})
    bulk = [r for r in shown if _bulk_approvable(core, r)]
    if len(bulk) > 1:
        blocks.append({"type": "actions", "block_id": "handoff.inbox.bulk", "elements": [_bulk_button(bulk)]})
    return title, blocks


def _bulk_approvable(core: Core, request: RequestState) -> bool:
    rule = next((r for r in core.routing.rules if r.name == request.plan.rule), None)
    return bool(rule and rule.bulk_approve)


def _bulk_button(requests: list[RequestState]) -> dict:
    value = json.dumps([[r.id, r.version, r.stage] for r in requests], separators=(",", ":"))
    button = blockkit.button(f"Approve all {len(requests)}", BULK_APPROVE, value, "primary")
    # Block Kit confirmation dialog object: a second look before many approvals at once.
    button["confirm"] = {
        "title": {"type": "plain_text", "text": "Approve them all?"},
        "text": {"type": "plain_text", "text": f"Handoff approves these {len(requests)} one by one, re-checking each in the ERP."},
        "confirm": {"type": "plain_text", "text": "Approve all"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    return button


async def bulk_approve(core: Core, approvals: Approvals, actor: ChatIdentity, items: list[list]) -> str:
    """Approve each item through the same checks as a click; one line per item says what happened."""
    lines, counted = [], 0
    for request_id, version, stage in items:
        result = await approvals.act(Action(request_id=str(request_id), version=int(version), stage=int(stage),
                                            verb=Verb.APPROVE, actor=actor))
        request = core.store.get_request(str(request_id))
        reference = request.reference if request else str(request_id)
        if result.outcome in COUNTED:
            counted += 1
            lines.append(f"✓ {reference}: {result.message}")
        else:
            lines.append(f"✗ {reference} not approved: {result.message}")
    log.info("bulk_approve.handled", extra={"items": len(items), "approved": counted, "user": actor.user_id})
    return f"Approved {counted} of {len(items)}.\n" + "\n".join(lines)


def _bulk_items(value: str) -> list[list]:
    """The [request, version, stage] triples a bulk button carries; [] when the value is not what Handoff wrote."""
    try:
        items = json.loads(value)
    except ValueError:
        return []
    valid = isinstance(items, list) and all(
        isinstance(i, list) and len(i) == 3 and isinstance(i[0], str) and all(isinstance(n, int) for n in i[1:]) for i in items
    )
    return items if valid else []


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

    @app.action(BULK_APPROVE)
    async def on_bulk(ack, body, action):
        await ack()
        items = _bulk_items(action.get("value", ""))
        text = (await bulk_approve(core, approvals, identity_of(body), items) if items else
                "This Approve all button is unreadable, so nothing was approved. Ask `pending` again for a fresh inbox.")
        channel_id = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
        if channel_id:
            await channel.whisper(channel_id, body["user"]["id"], text)

    @app.action(REASSIGN)
    async def on_reassign(ack, body, action):
        await ack()
        request_id, version, stage = parse_binding(action["value"])
        channel_id = (body.get("container") or {}).get("channel_id", "")
        await channel.call("views.open", trigger_id=body["trigger_id"], view=reassign_modal(request_id, version, stage, channel_id))

    @app.view(REASSIGN_MODAL)
    async def on_reassign_submit(ack, body, view):
        meta = json.loads(view["private_metadata"])
        picked = (view["state"]["values"].get("assignee_block", {}).get("assignee") or {}).get("selected_user")
        to = person_of(approvals, picked or "")
        if to is None:
            await ack(response_action="errors", errors={"assignee_block": "Handoff doesn't know this person: pick someone in the routing config."})
            return
        await ack()
        by, request = person_of(approvals, body["user"]["id"]), core.store.get_request(meta["r"])
        if by is None or request is None:
            text = status.UNKNOWN_PERSON if by is None else "Handoff has no record of this request."
        elif request.stage != meta["s"]:
            text = f"Stage {meta['s'] + 1} of {request.reference} is already decided; nothing was reassigned."
        else:
            text = delegation.reassign(core, request, by, to)
        if meta.get("channel"):
            await channel.whisper(meta["channel"], body["user"]["id"], text)


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text, "verbatim": True}
