"""Teams adapter, outbound: cards to channels and 1:1 chats through the Bot Connector REST API (botbuilder)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

from aiohttp import web
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationParameters, ErrorResponseException, Mention
from botframework.connector.aio import ConnectorClient
from msrest.exceptions import ClientException

from handoff.bot.core.errors import ChatError, ChatRateLimited
from handoff.bot.core.models import CardView, ChatIdentity, PostedCard, Target
from handoff.bot.core.ports import Approvals, ConversationDirectory
from handoff.cards import adaptive
from handoff.cards.escape import adaptive_message
from handoff.cards.text import summary

from .teams_auth import TeamsSettings, TokenSource, build_authentication, check_credentials
from .teams_bot import card_attachment, messages_handler
from .teams_commands import TeamsCommands
from .teams_graph import GraphCards

__all__ = ["TeamsChannel", "TeamsSettings", "teams_routes"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# msteams-docs bots/build-conversational-capability.md, "Status codes from bot conversational APIs": these need a
# person (install, unblock, fix the registration), and retrying only repeats them.
_PERMANENT_STATUS = {400, 401, 403, 404, 413}
_NOT_REACHABLE = {"ForbiddenOperationException", "BotNotInConversationRoster", "ConversationBlockedByUser", "BotDisabledByAdmin"}


class TeamsChannel:
    """ChatChannel for Microsoft Teams; also owns the CloudAdapter that the inbound endpoint uses."""

    platform = "teams"

    def __init__(self, settings: TeamsSettings, directory: ConversationDirectory, approvals: Approvals,
                 commands: TeamsCommands | None = None) -> None:
        self.settings = settings
        self.directory = directory
        self.approvals = approvals
        # Answers typed questions ("status PO-000123", "my approvals", "delegate …") and the inbox and reassign verbs;
        # None: questions go unanswered and cards offer no Reassign.
        self.commands = commands
        self.tokens = TokenSource(settings)
        self.adapter = CloudAdapter(build_authentication(settings, self.tokens))
        self.graph = GraphCards(settings) if settings.graph_read else None

    async def check(self) -> None:
        """Fail at start when Microsoft refuses the app's credentials (and warm the token cache)."""
        await check_credentials(self.settings, self.tokens)

    async def close(self) -> None:
        """Close the HTTP sessions of the connector clients."""
        await self.adapter.bot_framework_authentication.close()
        if self.graph is not None:
            await self.graph.close()

    # ---- ChatChannel

    async def post_card(self, request_id: str, stage: int, target: Target, view: CardView, key: str | None = None) -> PostedCard:
        """Post the card; `key` (the outbox item's) is hidden in it for `find_card`."""
        if target.kind == "channel":
            reference, conversation, mris = await self._reference(target), target.address, []
        else:
            reference, conversation = await self._open_dm(target)
            mris = [reference["user"]["id"]]
        card = self.render(view, mris, key)
        activity = Activity(type="message", summary=summary(view), attachments=[card_attachment(card)])
        connector = await self._connector(reference["serviceUrl"])
        sent = await self._call("post the card", target, connector.conversations.send_to_conversation(conversation, activity))
        log.info("card.posted", extra={"channel": "teams", "request_id": request_id, "kind": target.kind, "conversation": conversation})
        return PostedCard(request_id=request_id, stage=stage, target=target, conversation=conversation, message_id=sent.id)

    async def find_card(self, request_id: str, stage: int, target: Target, key: str, since: datetime) -> PostedCard | None:
        """The card posted with `key` since `since`, read back through Microsoft Graph when that is enabled.

        Channels and group chats only: nothing Handoff may be granted reads a 1:1 chat (teams_graph.py).
        """
        if self.graph is None or target.kind != "channel":
            return None
        message_id = await self.graph.find(await self._reference(target), target.address, key, since)
        if message_id is None:
            return None
        return PostedCard(request_id=request_id, stage=stage, target=target, conversation=target.address, message_id=message_id)

    async def update_card(self, posted: PostedCard, view: CardView) -> None:
        reference = await self._reference(posted.target)
        mris = [reference["user"]["id"]] if posted.target.kind == "dm" else []
        activity = Activity(type="message", id=posted.message_id, summary=summary(view),
                            attachments=[card_attachment(self.render(view, mris))])
        connector = await self._connector(reference["serviceUrl"])
        await self._call("update the card", posted.target,
                         connector.conversations.update_activity(posted.conversation, posted.message_id, activity))

    async def post_thread(self, posted: PostedCard, text: str, mention: str | None = None) -> None:
        """A reply under the card (`replyToId` = the card's message id); `mention` is an AAD object id."""
        reference = await self._reference(posted.target)
        activity = await self._message(text, mention)
        activity.reply_to_id = posted.message_id
        connector = await self._connector(reference["serviceUrl"])
        await self._call("reply in the card's thread", posted.target,
                         connector.conversations.reply_to_activity(posted.conversation, posted.message_id, activity))

    async def notify(self, target: Target, text: str) -> None:
        if target.kind == "channel":
            reference, conversation = await self._reference(target), target.address
        else:
            reference, conversation = await self._open_dm(target)
        connector = await self._connector(reference["serviceUrl"])
        await self._call("send the message", target,
                         connector.conversations.send_to_conversation(conversation, await self._message(text)))

    async def post_alert(self, target: Target, text: str) -> tuple[str, str]:
        """Post a stall alert; (conversation, activity id) is what editing it in place later needs."""
        if target.kind == "channel":
            reference, conversation = await self._reference(target), target.address
        else:
            reference, conversation = await self._open_dm(target)
        connector = await self._connector(reference["serviceUrl"])
        sent = await self._call("post the alert", target,
                                connector.conversations.send_to_conversation(conversation, await self._message(text)))
        return conversation, sent.id

    async def update_alert(self, conversation: str, message_id: str, text: str) -> None:
        # Alerts go to the operations channel (core.route.ops_target), whose id is also its directory key.
        target = Target(platform="teams", kind="channel", address=conversation)
        reference = await self._reference(target)
        activity = await self._message(text)
        activity.id = message_id
        connector = await self._connector(reference["serviceUrl"])
        await self._call("update the alert", target, connector.conversations.update_activity(conversation, message_id, activity))

    # ---- helpers

    def render(self, view: CardView, mris: list[str], key: str | None = None) -> dict:
        """The request's card, with Reassign offering the people its open stage may move to."""
        reassign_to = self.commands.reassign_to(view.packet.request_id) if self.commands and view.actionable else []
        return adaptive.render_card(view, mris, reassign_to, key=key)

    async def _reference(self, target: Target) -> dict:
        key = f"{'channel' if target.kind == 'channel' else 'user'}:{target.address}"
        reference = await self.directory.find_conversation("teams", key)
        if reference is None:
            raise ChatError(self._unreachable(target, "the app was never installed there"), permanent=True)
        return reference

    async def send_personal(self, asked: Activity, answer: Activity) -> str:
        """Send `answer` to the 1:1 chat of whoever sent `asked` (a channel or group message); the chat's id.

        The 1:1 is opened from the message itself (its sender's MRI, serviceUrl and tenant), so no stored reference is
        needed; Teams still refuses when it does not let the bot reach that person, and that ChatError is the caller's.
        """
        sender = asked.from_property
        tenant = ((asked.channel_data or {}).get("tenant") or {}).get("id") or asked.conversation.tenant_id
        reference = {"serviceUrl": asked.service_url, "bot": {"id": asked.recipient.id}, "tenantId": tenant,
                     "user": {"id": sender.id, "name": sender.name}}
        target = Target(platform="teams", kind="dm", address=sender.aad_object_id or sender.id)
        conversation = await self._create_dm(reference, target)
        connector = await self._connector(asked.service_url)
        await self._call("send the answer", target, connector.conversations.send_to_conversation(conversation, answer))
        return conversation

    async def _open_dm(self, target: Target) -> tuple[dict, str]:
        """Open (or find: Teams keeps one per person) the 1:1 chat with a person known by AAD object id."""
        reference = await self._reference(target)
        return reference, await self._create_dm(reference, target)

    async def _create_dm(self, reference: dict, target: Target) -> str:
        tenant = reference.get("tenantId") or self.settings.tenant_id
        user = reference["user"]
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=reference["bot"]["id"]),
            members=[ChannelAccount(id=user["id"], aad_object_id=target.address)],
            tenant_id=tenant,
            channel_data={"tenant": {"id": tenant}},
        )
        connector = await self._connector(reference["serviceUrl"])
        created = await self._call("open a 1:1 chat", target, connector.conversations.create_conversation(parameters))
        return created.id

    async def _message(self, body: str, mention: str | None = None) -> Activity:
        # Teams renders message text as markdown [UNVERIFIED: that it honours CommonMark backslash escapes].
        activity = Activity(type="message", text=adaptive_message(body), text_format="markdown")
        user = (await self.directory.find_conversation("teams", f"user:{mention}") or {}).get("user") if mention else None
        if user:
            # msteams-docs bots/how-to/conversations/channel-and-group-conversations.md: `<at>name</at>` in the text
            # plus a mention entity naming the same person by their MRI.
            person = self.approvals.person_for(ChatIdentity(platform="teams", user_id=mention))
            name = person.name if person else user.get("name") or "you"
            tag = f"<at>{name}</at>"
            activity.text = f"{tag} {activity.text}"
            activity.entities = [Mention(mentioned=ChannelAccount(id=user["id"], name=name), text=tag, type="mention")]
        return activity

    async def _connector(self, service_url: str) -> ConnectorClient:
        # The client inbound turns use too (they ask for the oauth scope as audience): one per regional serviceUrl.
        claims = self.adapter.create_claims_identity(self.settings.app_id)
        factory = self.adapter.bot_framework_authentication.create_connector_factory(claims)
        return await factory.create(service_url, self.settings.oauth_scope)

    def _unreachable(self, target: Target, cause: str) -> str:
        if target.kind == "channel":
            return (f"Handoff cannot post to Teams conversation {target.address}: {cause}. Add the Handoff app to that "
                    "team or chat (Apps > Manage your apps), or fix the channel in the routing config.")
        person = self.approvals.person_for(ChatIdentity(platform="teams", user_id=target.address))
        name = person.name if person else target.person or target.address
        return f"Handoff cannot reach {name} in Teams: {cause}. Install Handoff for {name} in Teams, or add a delegate."

    async def _call(self, what: str, target: Target, call: Awaitable[T]) -> T:
        try:
            return await call
        except ErrorResponseException as error:
            status = error.response.status_code
            code = getattr(getattr(error.error, "error", None), "code", None) or str(status)
            if status == 429:
                retry_after = float(error.response.headers.get("Retry-After") or 1)
                message = f"Teams throttled Handoff ({code}) trying to {what}; retry after {retry_after:g}s"
                raise ChatRateLimited(message, retry_after) from error
            log.warning("teams.call_failed", extra={"what": what, "status": status, "code": code, "target": target.address})
            if code in _NOT_REACHABLE or status == 404:
                raise ChatError(self._unreachable(target, f"Teams answered {status} {code}"), permanent=True) from error
            message = f"Teams refused to {what} ({status} {code}) for {target.address}."
            raise ChatError(message, permanent=status in _PERMANENT_STATUS) from error
        except (ClientException, OSError) as error:
            raise ChatError(f"Teams is unreachable trying to {what} ({type(error).__name__}); Handoff will retry.") from error


def teams_routes(channel: TeamsChannel) -> list[web.RouteDef]:
    """`POST /api/messages`: the messaging endpoint registered on the Azure Bot."""
    return [web.post("/api/messages", messages_handler(channel))]
