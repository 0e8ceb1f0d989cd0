"""Slack adapter: Web API calls for cards and threads, and a slack-bolt app for clicks, modals, commands, events."""

from __future__ import annotations

import json
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, SecretStr
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from handoff.bot.core.clicks import Answer, ClickInbox, StoredClick
from handoff.bot.core.context import Core
from handoff.bot.core.errors import ChatError, ChatRateLimited, StoreUnavailable
from handoff.bot.core.events import Event
from handoff.bot.core.effects import Effects
from handoff.bot.core.models import Action, ActionResult, CardView, ChatIdentity, Outcome, PostedCard, Target, Verb
from handoff.bot.core.ports import Approvals
from handoff.bot.faults import crash_point
from handoff.cards import blockkit
from handoff.cards.escape import mrkdwn_message

log = logging.getLogger(__name__)

# Errors no retry can fix: a human must invite the bot, fix the id or the token.
PERMANENT_ERRORS = {
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed", "account_inactive",
    "token_revoked", "user_not_found", "cannot_dm_bot", "missing_scope", "message_not_found", "invalid_blocks",
    "msg_too_long", "no_text", "user_not_in_channel", "cant_update_message", "edit_window_closed",
}

_FIXES = {
    "channel_not_found": "Check the channel id in the routing config, and invite the Handoff app to that channel.",
    "not_in_channel": "Invite the Handoff app to the channel (/invite @Handoff).",
    "invalid_auth": "The Slack bot token is wrong: set HANDOFF_SLACK__BOT_TOKEN to the app's Bot User OAuth Token.",
    "not_authed": "Set HANDOFF_SLACK__BOT_TOKEN.",
    "missing_scope": "Reinstall the Slack app from `handoff manifest slack` so it has every scope Handoff uses.",
    "user_not_found": "Check the person's Slack user id in the routing config.",
}


# Cards carry their outbox key as message metadata (https://docs.slack.dev/messaging/message-metadata), so a post
# whose answer was lost can be found again (`find_card`) instead of posted twice.
CARD_EVENT = "handoff_card"
# conversations.history pages read before giving up on finding a lost card: at 200 a page, the last 1,000 messages.
HISTORY_PAGES = 5


class SlackSettings(BaseModel):
    bot_token: SecretStr
    signing_secret: SecretStr
    # Configurable so tests, GovSlack (slack-gov.com) and proxies work.
    api_base_url: str = "https://slack.com/api/"


def sdk_logger() -> logging.Logger:
    """The logger to give AsyncWebClient: at its inherited level, set on itself.

    The SDK guards its per-call debug lines with `logger.level <= logging.DEBUG` (slack_sdk/web/async_internal_utils.py;
    slackapi/python-slack-sdk#1957), which a logger left at NOTSET always passes: every call formatted its whole JSON
    body, a card's blocks included, into a string nobody logs. A level of its own keeps DEBUG output when asked for.
    """
    logger = logging.getLogger("slack_sdk.web.async_base_client")
    logger.setLevel(logger.getEffectiveLevel())
    return logger


class SlackChannel:
    """ChatChannel for Slack (Web API)."""

    platform = "slack"

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def call(self, method: str, form: bool = False, **kwargs) -> dict:
        try:
            response = await self.client.api_call(method, **({"data": kwargs} if form else {"json": kwargs}))
        except SlackApiError as error:
            code = error.response.get("error", "unknown_error") if error.response else "unknown_error"
            if error.response is not None and error.response.status_code == 429:
                retry_after = float(error.response.headers.get("Retry-After", "1"))
                raise ChatRateLimited(f"Slack rate-limited {method}; retry after {retry_after:g}s", retry_after) from error
            fix = _FIXES.get(code, "")
            raise ChatError(f"Slack {method} failed: {code}. {fix}".strip(), permanent=code in PERMANENT_ERRORS) from error
        except OSError as error:
            raise ChatError(f"Slack unreachable for {method}: {error}") from error
        return response.data  # type: ignore[return-value]

    async def _conversation(self, target: Target) -> str:
        if target.kind == "channel":
            return target.address
        opened = await self.call("conversations.open", users=target.address)
        return opened["channel"]["id"]

    async def post_card(self, request_id: str, stage: int, target: Target, view: CardView, key: str | None = None) -> PostedCard:
        """Post the card; `key` (the outbox item's) rides along as message metadata for `find_card`."""
        text, blocks = blockkit.render_card(view)
        channel = await self._conversation(target)
        extra = {"metadata": {"event_type": CARD_EVENT, "event_payload": {"key": key}}} if key else {}
        sent = await self.call("chat.postMessage", channel=channel, text=text, blocks=blocks, **extra)
        return PostedCard(request_id=request_id, stage=stage, target=target, conversation=sent["channel"], message_id=sent["ts"])

    async def find_card(self, request_id: str, stage: int, target: Target, key: str, since: datetime) -> PostedCard | None:
        """The card posted with `key` since `since`, if Slack has it: a post whose answer never reached us."""
        channel = await self._conversation(target)
        # https://docs.slack.dev/reference/methods/conversations.history: metadata comes back only when asked for.
        # Form-encoded, as every Web API method accepts (https://docs.slack.dev/apis/web-api, "Pass arguments as").
        args = {"channel": channel, "oldest": f"{since.timestamp():.6f}", "include_all_metadata": "true", "limit": "200"}
        for _ in range(HISTORY_PAGES):
            page = await self.call("conversations.history", form=True, **args)
            for message in page.get("messages", []):
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") == CARD_EVENT and (metadata.get("event_payload") or {}).get("key") == key:
                    return PostedCard(request_id=request_id, stage=stage, target=target, conversation=channel, message_id=message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return None
            args["cursor"] = cursor
        log.warning("card.lookup_incomplete", extra={"request_id": request_id, "channel": channel, "pages": HISTORY_PAGES})
        return None

    async def update_card(self, posted: PostedCard, view: CardView) -> None:
        text, blocks = blockkit.render_card(view)
        await self.call("chat.update", channel=posted.conversation, ts=posted.message_id, text=text, blocks=blocks)

    async def post_thread(self, posted: PostedCard, text: str, mention: str | None = None) -> None:
        body = mrkdwn_message(text)
        if mention:
            body = f"<@{mention}> {body}"
        await self.call("chat.postMessage", channel=posted.conversation, thread_ts=posted.message_id, text=body)

    async def notify(self, target: Target, text: str) -> None:
        await self.call("chat.postMessage", channel=await self._conversation(target), text=mrkdwn_message(text))

    async def post_alert(self, target: Target, text: str) -> tuple[str, str]:
        """Post a stall alert; (channel, ts) is what chat.update needs to edit it later."""
        sent = await self.call("chat.postMessage", channel=await self._conversation(target), text=mrkdwn_message(text))
        return sent["channel"], sent["ts"]

    async def update_alert(self, conversation: str, message_id: str, text: str) -> None:
        # chat.update takes the channel id and ts chat.postMessage returned (https://api.slack.com/methods/chat.update).
        await self.call("chat.update", channel=conversation, ts=message_id, text=mrkdwn_message(text))

    async def whisper(self, channel: str, user: str, text: str, blocks: list[dict] | None = None,
                      thread_ts: str | None = None) -> None:
        """A private reply to one person in a channel (ephemeral): refusals, confirmations, answers to a mention."""
        extra = {**({"blocks": blocks} if blocks else {}), **({"thread_ts": thread_ts} if thread_ts else {})}
        await self.call("chat.postEphemeral", channel=channel, user=user, text=mrkdwn_message(text), **extra)


def parse_binding(value: str) -> tuple[str, int, int]:
    data = json.loads(value)
    return str(data["r"]), int(data["v"]), int(data["s"])


def identity_of(body: dict) -> ChatIdentity:
    # Bolt has verified the request signature, so `user.id` is Slack's word, not the client's.
    user = body["user"]
    return ChatIdentity(platform="slack", user_id=user["id"], display_name=user.get("name") or user.get("username"))


def clicked_in(body: dict) -> str | None:
    """The channel a button was clicked in, where a private answer to the click goes."""
    return (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")


def answer_clicks(channel: SlackChannel) -> Answer:
    """How a Slack click is answered: a counted approval shows on the card itself, anything else privately."""

    async def answer(click: StoredClick, result: ActionResult) -> None:
        counted = result.outcome in {Outcome.RECORDED, Outcome.STAGE_DECIDED, Outcome.REQUEST_DECIDED}
        if click.reply_to and not (counted and click.action.verb is Verb.APPROVE):
            await channel.whisper(click.reply_to, click.action.actor.user_id, result.message)

    return answer


def build_bolt_app(settings: SlackSettings, client: AsyncWebClient, approvals: Approvals, channel: SlackChannel, core: Core,
                   clicks: ClickInbox) -> AsyncApp:
    """The bolt app: signature checks (5-minute window), ack within 3 s, then the work."""
    from . import slack_commands as commands  # it builds on this module, so it is imported once this one is complete

    # Listeners run before the answer, not in a task bolt polls every 10 ms for its ack (slack_bolt/listener/
    # asyncio_runner.py): each acks, hands the rest to core.followups and returns, so Slack has its 200 at once.
    app = AsyncApp(
        signing_secret=settings.signing_secret.get_secret_value(),
        client=client,
        raise_error_for_unhandled_request=False,
        process_before_response=True,
    )
    later = core.followups.start

    def kept(key: str, body: dict, verb: Verb, binding: tuple[str, int, int], reply_to: str | None,
             comment: str | None = None) -> Coroutine[Any, Any, None] | None:
        """Store the click before the ack (stored before acknowledged); the work that decides it once Slack has its
        answer, or None for a second delivery of a click already stored."""
        request_id, version, stage = binding
        click = StoredClick(key=key, reply_to=reply_to, action=Action(
            request_id=request_id, version=version, stage=stage, verb=verb, actor=identity_of(body), comment=comment))
        try:
            inbox_id = clicks.keep(click)
        except StoreUnavailable as down:
            # Decided without a stored copy, as before: if the database stays away the person is told it wasn't counted.
            log.warning("click.not_stored", extra={"request_id": request_id, "error": str(down)})
            return decide(None, click)
        return None if inbox_id is None else decide(inbox_id, click)

    async def decide(inbox_id: int | None, click: StoredClick) -> None:
        crash_point("after_ack")
        await clicks.handle(inbox_id, click)

    @app.action("handoff.approve")
    async def on_approve(ack, body, action):
        # Slack sends no click id: the message, the moment of the click (microseconds) and who clicked name it.
        container = body.get("container") or {}
        key = f"slack:{container.get('message_ts')}:{action['action_ts']}:{body['user']['id']}"
        work = kept(key, body, Verb.APPROVE, parse_binding(action["value"]), clicked_in(body))
        await ack()
        if work is not None:
            later(work, "slack approve")

    async def open_modal(body: dict, action: dict, build) -> None:
        request_id, version, stage = parse_binding(action["value"])
        container = body.get("container") or {}
        view = build(request_id, version, stage, container.get("channel_id", ""), container.get("message_ts", ""))
        # trigger_id expires within seconds: open the modal before anything slow.
        await channel.call("views.open", trigger_id=body["trigger_id"], view=view)

    @app.action("handoff.reject")
    async def on_reject(ack, body, action):
        await ack()
        later(open_modal(body, action, blockkit.reject_modal), "slack reject modal")

    @app.action("handoff.ask_info")
    async def on_ask_info(ack, body, action):
        await ack()
        later(open_modal(body, action, blockkit.ask_info_modal), "slack ask-info modal")

    def submitted(view: dict) -> tuple[str, dict]:
        values = [v for block in view["state"]["values"].values() for v in block.values()]
        text = (values[0].get("value") or "").strip() if values else ""
        return text, json.loads(view["private_metadata"])

    async def submit(ack, body, view, verb: Verb, missing: str) -> None:
        text, meta = submitted(view)
        if not text:
            block_id = next(iter(view["state"]["values"]), "reason")
            await ack(response_action="errors", errors={block_id: missing})
            return
        # A modal is submitted once: its view id and who submitted it name the click.
        work = kept(f"slack:{view['id']}:{body['user']['id']}", body, verb, (str(meta["r"]), int(meta["v"]), int(meta["s"])),
                    meta.get("channel"), comment=text)
        await ack()
        if work is not None:
            later(work, f"slack {verb.value}")

    @app.view("handoff.reject_modal")
    async def on_reject_submit(ack, body, view):
        await submit(ack, body, view, Verb.REJECT, "Please say why you reject it: the requester will see this.")

    @app.view("handoff.ask_info_modal")
    async def on_ask_submit(ack, body, view):
        await submit(ack, body, view, Verb.ASK_INFO, "Please write your question.")

    @app.command("/handoff")
    async def on_command(ack, command):
        text, blocks = commands.reply(core, approvals, command["user_id"], command.get("text", ""))
        # Ephemeral by default, but still mrkdwn: an ERP value like <!channel> must stay inert here too.
        await (ack(text=mrkdwn_message(text), blocks=blocks) if blocks else ack(text=mrkdwn_message(text)))

    @app.event("app_mention")
    async def on_mention(body, event):
        later(mention(body, event), "slack mention")

    async def mention(body: dict, event: dict) -> None:
        if not core.store.first_delivery(f"slack:{body['event_id']}"):
            return  # Slack retried a delivery we already answered
        text, blocks = commands.reply(core, approvals, event["user"], event.get("text", "").split(">", 1)[-1])
        # Answers show only requests the asker may see, so everyone else in the channel must not read them (issue #5):
        # ephemeral, in the thread only when asked in one, since Slack shows an ephemeral reply in a thread that
        # exists (https://docs.slack.dev/reference/methods/chat.postEphemeral, thread_ts).
        try:
            await channel.whisper(event["channel"], event["user"], text, blocks, thread_ts=event.get("thread_ts"))
        except ChatError as error:
            if not error.permanent:
                raise
            # user_not_in_channel (a shared channel, say): the asker's DM with Handoff still reaches them alone.
            log.warning("slack.mention_answered_in_dm", extra={"channel": event["channel"], "user": event["user"], "error": str(error)})
            dm = await channel.call("conversations.open", users=event["user"])
            await answer_in_dm(dm["channel"]["id"], text, blocks)

    async def answer_in_dm(conversation: str, text: str, blocks: list[dict] | None) -> None:
        await channel.call("chat.postMessage", channel=conversation, text=mrkdwn_message(text), **({"blocks": blocks} if blocks else {}))

    @app.event("message")
    async def on_message(body, event):
        later(message(body, event), "slack message")

    async def message(body: dict, event: dict) -> None:
        if event.get("subtype") or event.get("bot_id") or not core.store.first_delivery(f"slack:{body['event_id']}"):
            return
        if event.get("channel_type") == "im":
            await answer_in_dm(event["channel"], *commands.reply(core, approvals, event["user"], event.get("text", "")))
            return
        thread = event.get("thread_ts")
        request_id = core.store.request_for_message(event["channel"], thread) if thread else None
        if request_id is None:
            return
        person = approvals.person_for(ChatIdentity(platform="slack", user_id=event["user"]))
        with core.store.transaction() as conn:
            core.store.log(request_id, Event.INFO_PROVIDED, person.key if person else f"slack:{event['user']}", {"answer": event.get("text", "")})
            Effects(conn, core.clock.now()).update_cards(request_id)
        core.wake()

    commands.register_commands(app, core, approvals, channel)
    return app


def _signed(verifier: SignatureVerifier, body: bytes, headers) -> bool:
    try:
        return verifier.is_valid_request(body, dict(headers))
    except (ValueError, TypeError):
        # The SDK raises on a timestamp that is not a number, a body that is not UTF-8 and a non-ASCII signature.
        return False


def slack_handler(app: AsyncApp, signing_secret: str):
    """aiohttp handler for /slack/events: events, interactivity and slash commands share it."""
    verifier = SignatureVerifier(signing_secret)

    async def handle(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            log.warning("slack.bad_request", extra={"reason": "too large"})
            return web.json_response({"error": "Slack request body too large."}, status=413)
        # Signature first (https://api.slack.com/authentication/verifying-requests-from-slack): bolt checks it only
        # after parsing, so an unsigned body it cannot parse was answered 400 and showed strangers our parser.
        if not _signed(verifier, body, request.headers):
            log.warning("slack.unauthorized", extra={"remote": request.remote})
            return web.json_response({"error": "The request is not signed by Slack with this app's signing secret, "
                                               "or was signed more than 5 minutes ago."}, status=401)
        try:
            bolt_request = await to_bolt_request(request)
        except Exception as error:  # noqa: BLE001 — bolt parses the signed bytes before any listener runs
            # Garbage (a JSON list, broken JSON in `payload`) must be a 400, not a 500.
            log.warning("slack.bad_request", extra={"reason": type(error).__name__})
            return web.json_response({"error": "Unreadable Slack request body."}, status=400)
        response = await app.async_dispatch(bolt_request)
        if response.status >= 500:
            # Bolt answers 500 when its own matchers trip over a signed body Slack never sends (an event that is
            # null, a block_actions without actions): bad input, so a 4xx; bolt has logged the traceback.
            log.warning("slack.unreadable_request", extra={"status": response.status})
            return web.json_response({"error": "Handoff could not handle this Slack request."}, status=400)
        return await to_aiohttp_response(response)

    return handle
