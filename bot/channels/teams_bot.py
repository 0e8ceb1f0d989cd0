"""Teams adapter, inbound: `/api/messages` authenticated as Bot Framework requires, installs remembered, card
actions (Universal Actions and legacy Action.Submit) turned into decisions bound to the verified identity."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import requests
from aiohttp import web
from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.schema import Activity, Attachment, ChannelAccount, ErrorResponseException
from msrest.exceptions import ClientException, DeserializationError

from handoff.bot.core.errors import ChatError
from handoff.bot.core.models import Action, ActionResult, ChatIdentity, Outcome, Verb
from handoff.cards import adaptive
from handoff.cards.adaptive_inbox import INBOX_KEY
from handoff.cards.escape import adaptive_message

from .teams_commands import names_requests

if TYPE_CHECKING:
    from .teams import TeamsChannel

log = logging.getLogger(__name__)

# Invoke response bodies (MicrosoftDocs/AdaptiveCards authoring-cards/universal-action-model.md, "Response format"),
# built as plain dicts: botbuilder's AdaptiveCardInvokeResponse types `value` as an object and cannot carry a message.
# The card type is spelled as msteams-docs Sequential-Workflows.md and botbuilder's card_factory.py spell it.
CARD_TYPE = adaptive.CONTENT_TYPE
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"
ERROR_TYPE = "application/vnd.microsoft.error"

VERBS = {adaptive.APPROVE: Verb.APPROVE, adaptive.REJECT: Verb.REJECT, adaptive.ASK_INFO: Verb.ASK_INFO}
COMMENT_INPUT = {Verb.REJECT: adaptive.REASON, Verb.ASK_INFO: adaptive.QUESTION}
COMMENT_NEEDED = {Verb.REJECT: "Please say why you reject it: the requester will see this.",
                  Verb.ASK_INFO: "Please write your question."}
# msteams-docs channel-and-group-conversations.md: a mention is `<at>name</at>` in the text (plus an entity).
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
PRIVATE_SENT = "I've sent you the answer in our 1:1 chat."
PRIVATE_UNREACHABLE = (
    "I can't open a 1:1 chat with you, so I won't answer here where everyone can read it. "
    "Install Handoff for yourself (Apps > search for Handoff > Add), then ask me again."
)
DONE = {Outcome.RECORDED, Outcome.STAGE_DECIDED, Outcome.REQUEST_DECIDED, Outcome.INFO_REQUESTED}


def unusable(error: ValueError) -> str:
    """What to tell someone whose click carried data Handoff cannot bind to a request."""
    return f"This card's button carries no usable request ({error})."


def _message(text: str) -> dict:
    return {"statusCode": 200, "type": MESSAGE_TYPE, "value": text}


def _error(reason: str) -> dict:
    return {"statusCode": 400, "type": ERROR_TYPE, "value": {"code": "BadRequest", "message": reason}}


def card_attachment(card: dict) -> Attachment:
    return Attachment(content_type=CARD_TYPE, content=card)


def _channel_key(activity: Activity) -> str:
    channel = (activity.channel_data or {}).get("channel") or {}
    # Inside a channel thread the conversation id carries ";messageid=…"; the channel itself is what we post to.
    return channel.get("id") or activity.conversation.id.split(";", 1)[0]


class HandoffTeamsBot(ActivityHandler):
    """Remembers where it is installed and turns card actions into Handoff actions."""

    def __init__(self, channel: TeamsChannel) -> None:
        self.channel = channel

    # ---- installs

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        await self._remember(turn_context.activity)

    async def on_installation_update(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if (activity.action or "").startswith("remove"):
            # Nothing to forget: a later post there fails with Teams' own 403 and reaches operations with the fix.
            log.info("teams.uninstalled", extra={"conversation": activity.conversation.id})
            return
        await self._remember(activity)

    async def _remember(self, activity: Activity) -> None:
        """Store references for later proactive posts: the conversation, its team, and every person seen in it."""
        reference = TurnContext.get_conversation_reference(activity).serialize()
        reference.pop("activityId", None)  # a stored reference must not turn proactive posts into replies
        # botbuilder-python maps ConversationAccount.tenant_id to "tenantID", so Teams' "tenantId" is lost on the way
        # in; channelData.tenant.id is where Teams itself puts the tenant.
        tenant = ((activity.channel_data or {}).get("tenant") or {}).get("id") or activity.conversation.tenant_id
        reference["tenantId"] = tenant
        entries: dict[str, dict] = {}
        if activity.conversation.conversation_type == "personal":
            if activity.from_property and activity.from_property.aad_object_id:
                entries[f"user:{activity.from_property.aad_object_id}"] = reference
        else:
            team = (activity.channel_data or {}).get("team") or {}
            if team.get("aadGroupId"):
                # Graph's team id (msteams-docs subscribe-to-conversation-events.md: the bot added to a team carries
                # `channelData.team.aadGroupId`; get-teams-context.md calls it the team's group id), for reading cards back.
                reference["aadGroupId"] = team["aadGroupId"]
            entries[f"channel:{_channel_key(activity)}"] = reference
            if team.get("id"):
                entries[f"team:{team['id']}"] = reference
        for member in activity.members_added or []:
            if member.aad_object_id and member.id != activity.recipient.id:
                # Teams lets a bot open a 1:1 with anyone in a team or chat where it is installed.
                entries[f"user:{member.aad_object_id}"] = {**reference, "user": member.serialize()}
        for key, value in entries.items():
            await self.channel.directory.save_conversation("teams", key, value)
        log.info("teams.installed", extra={"type": activity.type, "keys": list(entries)})

    # ---- card actions

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse | None:
        # Answered here, not from on_adaptive_card_invoke: with CloudAdapter that path serializes the body twice
        # and Teams gets a 500 (protocols.md §5). The invoke's HTTP status is 200 even for errors; `statusCode` says.
        if turn_context.activity.name != "adaptiveCard/action":
            return await super().on_invoke_activity(turn_context)
        value = turn_context.activity.value if isinstance(turn_context.activity.value, dict) else {}
        action = value.get("action") if isinstance(value.get("action"), dict) else {}
        if action.get("type") != "Action.Execute":
            body = _error(f"Handoff cards only send Action.Execute, not {action.get('type')!r}.")
        else:
            body = await self._execute(turn_context.activity, action.get("verb"), action.get("data"))
        return InvokeResponse(status=200, body=body)

    async def _execute(self, activity: Activity, verb: object, data: object) -> dict:
        # `trigger` and `action.id` are not required: the local Teams playground omits them.
        commands = self.channel.commands
        if commands is not None and verb in commands.verbs and isinstance(data, dict):
            try:
                said, show_card = await commands.execute(_identity(activity), str(verb), data)
            except ValueError as error:
                return _error(unusable(error))
            if data.get(INBOX_KEY):
                return await self._inbox_response(activity, said)
            return await self._card_response(data["r"], activity) if show_card else _message(said)
        try:
            request_id, version, stage = adaptive.binding(data)
        except ValueError as error:
            return _error(unusable(error))
        if verb == adaptive.REFRESH:
            return await self._card_response(request_id, activity)
        if verb not in VERBS:
            return _error(f"Unknown card action {verb!r}.")
        result = await self._act(activity, VERBS[verb], request_id, version, stage, data)
        if isinstance(data, dict) and data.get(INBOX_KEY):
            return await self._inbox_response(activity, result if isinstance(result, str) else result.message)
        if isinstance(result, str):
            return _message(result)
        if result.outcome in DONE:
            return await self._card_response(request_id, activity)
        return _message(result.message)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        """Legacy Action.Submit (older clients render the fallback): a message whose `value` is the button's data."""
        activity, data = turn_context.activity, turn_context.activity.value
        commands = self.channel.commands
        if isinstance(data, dict) and commands is not None and data.get("verb") in commands.verbs:
            try:
                said, _ = await commands.execute(_identity(activity), str(data["verb"]), data)
            except ValueError as error:
                said = unusable(error)
            await turn_context.send_activity(said)
            return
        if not isinstance(data, dict) or data.get("verb") not in VERBS:
            await self._answer(turn_context)
            return
        try:
            request_id, version, stage = adaptive.binding(data)
        except ValueError as error:
            await turn_context.send_activity(unusable(error))
            return
        result = await self._act(activity, VERBS[data["verb"]], request_id, version, stage, data)
        if isinstance(result, str) or result.outcome not in DONE or not activity.reply_to_id:
            await turn_context.send_activity(result if isinstance(result, str) else result.message)
            return
        view = await self.channel.approvals.view(request_id)
        if view is None:
            await turn_context.send_activity(result.message)
            return
        # A submit cannot answer with a card, so the card it came from is replaced in place.
        card = self.channel.render(view, self._mris(activity))
        await turn_context.update_activity(Activity(type="message", id=activity.reply_to_id, attachments=[card_attachment(card)]))

    async def _answer(self, turn_context: TurnContext) -> None:
        """A typed question: in a channel Teams only forwards messages that @mention the bot, so drop that mention."""
        activity = turn_context.activity
        identity = _identity(activity)
        if self.channel.commands is None or identity is None:
            return
        text = _MENTION.sub(" ", activity.text or "")
        bot_id = activity.recipient.id if activity.recipient else None
        # msrest keeps a mention's `mentioned` and `text` only in additional_properties (Entity declares just `type`).
        mentions = [{**(e.additional_properties or {}), "type": e.type} for e in activity.entities or [] if e.type == "mention"]
        addressed = any((m.get("mentioned") or {}).get("id") == bot_id for m in mentions)
        if activity.conversation.conversation_type != "personal" and not addressed:
            # With the RSC read permissions (graph_read) Teams forwards every channel and chat message, not only those
            # that @mention the bot (msteams-docs channel-messages-with-rsc.md, "Filtering at mention messages").
            return
        mentions = [m for m in mentions if (m.get("mentioned") or {}).get("id") != bot_id]
        question = " ".join(text.split())
        answer = await self.channel.commands.reply(identity, question, mentions)
        reply = (Activity(type="message", attachments=[card_attachment(answer)]) if isinstance(answer, dict)
                 else Activity(type="message", text=adaptive_message(answer), text_format="markdown"))
        if activity.conversation.conversation_type != "personal" and names_requests(question):
            # Everyone in a channel or group chat would read what only the asker may see: the answer goes to their 1:1.
            reply = Activity(type="message", text=await self._send_privately(activity, reply))
        try:
            await turn_context.send_activity(reply)
        except (ErrorResponseException, ClientException, OSError) as error:
            # The question was received; an unreachable connector is logged, not turned into a 500 for Teams to retry.
            log.warning("teams.answer_failed", extra={"service_url": activity.service_url, "error": type(error).__name__})

    async def _send_privately(self, activity: Activity, reply: Activity) -> str:
        """Send `reply` to the asker's 1:1 chat; what the channel is told instead, which never holds the answer."""
        try:
            conversation = await self.channel.send_personal(activity, reply)
        except ChatError as error:
            log.warning("teams.private_answer_failed", extra={"conversation": activity.conversation.id, "error": type(error).__name__,
                                                              "permanent": error.permanent})
            return PRIVATE_UNREACHABLE
        log.info("teams.answered_privately", extra={"asked_in": activity.conversation.id, "answered_in": conversation})
        return PRIVATE_SENT

    async def _act(self, activity: Activity, verb: Verb, request_id: str, version: int, stage: int, data: dict) -> ActionResult | str:
        """The core's result, or (as a string) why the click cannot be counted as sent, before the core sees it."""
        identity = _identity(activity)
        if identity is None:
            return "Teams did not say who you are (no Microsoft Entra object id), so Handoff cannot count this."
        # An inbox card holds several forms, so its inputs carry the request id (cards/adaptive_inbox.py).
        field = COMMENT_INPUT.get(verb)
        comment = str(data.get(f"{field}.{request_id}") or data.get(field) or "").strip() if field else None
        if comment == "":
            return COMMENT_NEEDED[verb]
        action = Action(request_id=request_id, version=version, stage=stage, verb=verb, actor=identity, comment=comment)
        return await self.channel.approvals.act(action)

    async def _card_response(self, request_id: str, activity: Activity) -> dict:
        view = await self.channel.approvals.view(request_id)
        if view is None:
            return _message("Handoff has no record of this request; it may come from another installation.")
        return {"statusCode": 200, "type": CARD_TYPE, "value": self.channel.render(view, self._mris(activity))}

    async def _inbox_response(self, activity: Activity, said: str) -> dict:
        """A click on the inbox: the inbox again, the click's result on top, so the other items stay at hand."""
        identity = _identity(activity)
        person = self.channel.approvals.person_for(identity) if identity else None
        if person is None or self.channel.commands is None:
            return _message(said)
        answer = self.channel.commands.inbox(person, said.splitlines())
        return {"statusCode": 200, "type": CARD_TYPE, "value": answer} if isinstance(answer, dict) else _message(said)

    @staticmethod
    def _mris(activity: Activity) -> list[str]:
        # In a 1:1 chat the one viewer should see the live card; channels are refreshed by updating their copy.
        personal = activity.conversation.conversation_type == "personal"
        return [activity.from_property.id] if personal and activity.from_property else []


def _identity(activity: Activity) -> ChatIdentity | None:
    # The activity arrived with a verified Bot Connector token, so `from.aadObjectId` is Teams' word; nothing the
    # card's `data` says about a person is ever used.
    sender: ChannelAccount | None = activity.from_property
    if sender is None or not sender.aad_object_id:
        return None
    return ChatIdentity(platform="teams", user_id=sender.aad_object_id, display_name=sender.name)


UNSIGNED = "The request is not signed by the Bot Framework for this bot."


def _refuse(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def messages_handler(channel: TeamsChannel):
    """aiohttp handler for `POST /api/messages`."""
    bot, adapter, settings = HandoffTeamsBot(channel), channel.adapter, channel.settings
    if settings.local_development:
        log.warning("teams.local_development", extra={"detail": "POST /api/messages accepts requests WITHOUT authentication"})

    async def handle(request: web.Request) -> web.Response:
        # None, not "": botbuilder only takes the anonymous path for a missing header.
        header = request.headers.get("Authorization") or None
        if header is None and not settings.local_development:
            # Refused before the body is read: without a token nothing about the parser is anyone's business.
            log.warning("teams.unauthorized", extra={"reason": "no Authorization header", "remote": request.remote})
            return _refuse(401, UNSIGNED)
        if request.content_type != "application/json":
            return _refuse(415, "Send the activity as application/json.")
        try:
            body = await request.json()
        except ValueError:  # broken JSON, or bytes that are not UTF-8 at all
            return _refuse(400, "The body is not valid JSON.")
        if not isinstance(body, dict) or not all(body.get(field) for field in ("type", "serviceUrl", "conversation")):
            return _refuse(400, "The body is not a Bot Framework activity (it needs `type`, `serviceUrl` and `conversation`).")
        try:
            activity = Activity().deserialize(body)
        except DeserializationError as error:
            return _refuse(400, f"The body is not a Bot Framework activity ({error.__class__.__name__}).")
        if header is None:
            log.warning("teams.unauthenticated_request", extra={"activity_type": activity.type, "remote": request.remote})
        try:
            authenticated = await adapter.bot_framework_authentication.authenticate_request(activity, header)
        except requests.RequestException as error:
            url = settings.openid_metadata_url
            log.error("teams.keys_unavailable", extra={"url": url, "error": type(error).__name__})
            return _refuse(503, f"Handoff could not fetch the Bot Framework signing keys from {url}; try again.")
        except Exception as error:  # botbuilder raises PermissionError, PyJWT errors and IndexError for unknown keys
            log.warning("teams.unauthorized",
                        extra={"reason": type(error).__name__, "activity_type": activity.type, "remote": request.remote})
            return _refuse(401, UNSIGNED)
        invoke = await adapter.process_activity(authenticated, activity, bot.on_turn)
        if invoke is not None:
            return web.json_response(invoke.body, status=int(invoke.status))
        return web.Response(status=201)

    return handle
