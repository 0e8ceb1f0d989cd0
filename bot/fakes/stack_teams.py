"""The Teams side of the local stack: a Bot Connector fake, installs as Teams reports them, and people clicking cards."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from handoff.bot.channels.teams import TeamsSettings
from handoff.bot.core.route import RoutingConfig

from .botconnector import FakeBotConnector
from .entra import FakeEntra
from .graph import FakeGraph
from .threaded import ThreadedServer
from .waiting import wait_until

APP_ID = "4d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"
APP_PASSWORD = "local-teams-client-secret"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BOT = {"id": f"28:{APP_ID}", "name": "Handoff"}
# The npm Teams playground is the Bot Connector at this path of its own server (protocols.md §5).
PLAYGROUND_PATH = "/_connector"


@dataclass(frozen=True)
class TeamsCard:
    """A card Handoff posted: where it is, and its activity as the connector holds it now."""

    conversation: str
    id: str
    activity: dict

    @property
    def content(self) -> dict:
        return self.activity["attachments"][0]["content"]

    def execute_data(self, verb: str, request_id: str | None = None) -> dict:
        """The `data` of the card's Action.Execute for `verb` (Reject and Ask sit inside Action.ShowCard forms); on an
        inbox card, `request_id` picks the item."""
        found = next((a for a in _actions(self.content, verb) if request_id is None or a["data"].get("r") == request_id), None)
        if found is None:
            raise LookupError(f"card {self.id} has no Action.Execute {verb!r} (is it still open?)")
        return found["data"]


def _actions(node: object, verb: str) -> Iterator[dict]:
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute" and node.get("verb") == verb:
            yield node
        for value in node.values():
            yield from _actions(value, verb)
    elif isinstance(node, list):
        for value in node:
            yield from _actions(value, verb)


def team_group(channel_key: str) -> str:
    """The AAD group id of the team a routing channel lives in, stable per channel key."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"handoff-fake-team:{channel_key}"))


@contextmanager
def teams_connector(clock, local_development: bool = False) -> Iterator[tuple[FakeBotConnector, str]]:
    """The fake connector on its own thread and its serviceUrl; in local development it stands in for the playground."""
    with teams_fakes(clock, local_development) as (connector, service_url, _):
        yield connector, service_url


@contextmanager
def teams_fakes(clock, local_development: bool = False) -> Iterator[tuple[FakeBotConnector, str, FakeGraph]]:
    """`teams_connector`, plus Microsoft Graph's view of the same messages (under /graph, its identity platform under
    /entra)."""
    connector = FakeBotConnector(APP_ID, APP_PASSWORD, tenant_id=TENANT, clock=clock, require_auth=not local_development)
    entra = FakeEntra(clock, tenant=TENANT)
    entra.register(APP_ID, APP_PASSWORD)
    graph = FakeGraph(connector, entra)
    app = connector.app()
    if local_development:
        # The playground sends no token and serves the connector API under /_connector.
        outer = web.Application()
        outer.add_subapp(PLAYGROUND_PATH, app)
        app = outer
    app.add_subapp("/graph", graph.app())
    app.add_subapp("/entra", entra.app)
    with ThreadedServer(app) as server:
        connector.url = server.url
        yield connector, f"{server.url}{PLAYGROUND_PATH}" if local_development else connector.service_url, graph


def teams_settings(connector: FakeBotConnector, local_development: bool = False, graph_read: bool = False) -> TeamsSettings:
    if local_development:
        return TeamsSettings(app_id=APP_ID, local_development=True)
    graph = {"graph_read": True, "graph_url": f"{connector.url}/graph/v1.0", "graph_login_url": f"{connector.url}/entra"}
    return TeamsSettings(app_id=APP_ID, app_password=APP_PASSWORD, login_url=connector.url,
                         openid_metadata_url=connector.openid_metadata_url, **(graph if graph_read else {}))


@dataclass
class TeamsDriver:
    """Sends what Teams would send to Handoff's `/api/messages`, and reads what Handoff posted to the connector."""

    connector: FakeBotConnector
    service_url: str
    routing: RoutingConfig
    endpoint: str
    http: aiohttp.ClientSession
    anonymous: bool = False
    graph: FakeGraph | None = None  # given: installing grants the resource-specific consent the app package asks for

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)

    # ---- addresses

    def aad(self, person: str) -> str:
        return self.routing.people[person].teams or ""

    def conversation(self, where: str) -> str:
        """A channel key, a person key (their 1:1 chat with Handoff) or a raw conversation id."""
        if where in self.routing.channels:
            return self.routing.channels[where].teams or ""
        if where in self.routing.people:
            return f"a:fake-personal-{self.aad(where)}"
        return where

    # ---- what Teams sends

    async def send(self, activity: dict) -> tuple[int, object]:
        """POST an activity signed as the Bot Connector signs it (unsigned, like the playground, when anonymous)."""
        headers = {} if self.anonymous else {"Authorization": f"Bearer {self.connector.issue_token(service_url=self.service_url)}"}
        async with self.http.post(self.endpoint, json=activity, headers=headers) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    def _activity(self, kind: str, where: str, sender: dict, **fields: object) -> dict:
        conversation = self.conversation(where)
        activity = {"type": kind, "id": f"f:local-{next(self._ids)}", "serviceUrl": self.service_url, "channelId": "msteams",
                    "from": sender, "recipient": BOT, "locale": "en-US", **fields}
        if where in self.routing.channels:
            # Shaped like shared/fixtures/teams and tests/bot/channels/teams_harness.py's channel install.
            activity["conversation"] = {"conversationType": "channel", "tenantId": TENANT, "isGroup": True, "id": conversation}
            team = {"id": f"19:team-{where}@thread.tacv2", "name": where, "aadGroupId": team_group(where)}
            activity["channelData"] = {"tenant": {"id": TENANT}, "team": team, "channel": {"id": conversation}}
        else:
            activity["conversation"] = {"conversationType": "personal", "tenantId": TENANT, "id": conversation}
            activity["channelData"] = {"tenant": {"id": TENANT}}
        return activity

    def _person(self, person: str) -> dict:
        aad = self.aad(person)
        # Speaking in a channel installs nothing: only install() puts the app in someone's personal scope.
        return {"id": self.connector.mri(aad), "name": self.routing.people[person].name, "aadObjectId": aad}

    async def install(self, skip: Iterable[str] = ()) -> None:
        """The app added to each team channel of the routing config, and installed personally by everyone but `skip`."""
        for key, channel in self.routing.channels.items():
            if channel.teams:
                self.connector.add_conversation(channel.teams)
                if self.graph is not None:
                    self.graph.consent(channel.teams, team=team_group(key))
                admin = {"id": "29:fake-teams-admin", "name": "Teams admin"}
                await self._expect(201, self._activity("conversationUpdate", key, admin, membersAdded=[{"id": BOT["id"]}]))
        for key, person in self.routing.people.items():
            if person.teams and key not in skip:
                self.connector.installed_for(person.teams)
                sender = self._person(key)
                self.connector.add_conversation(self.conversation(key))
                await self._expect(201, self._activity("conversationUpdate", key, sender, membersAdded=[{"id": BOT["id"]}]))

    async def _expect(self, status: int, activity: dict) -> None:
        got, body = await self.send(activity)
        if got != status:
            raise RuntimeError(f"Handoff answered {got} to a Teams {activity['type']} (expected {status}): {body}")

    async def invoke(self, person: str, card: TeamsCard, verb: str, inputs: dict | None = None,
                     request_id: str | None = None) -> tuple[int, object]:
        """`person` clicks the Action.Execute `verb` on `card`: an `adaptiveCard/action` invoke, like the shared fixture."""
        where = next((k for k in [*self.routing.channels, *self.routing.people] if self.conversation(k) == card.conversation),
                     card.conversation)
        action = {"type": "Action.Execute", "id": verb, "title": verb, "verb": verb,
                  "data": {**card.execute_data(verb, request_id), **(inputs or {})}}
        activity = self._activity("invoke", where, self._person(person), name="adaptiveCard/action", replyToId=card.id,
                                  value={"action": action, "trigger": "manual"})
        return await self.send(activity)

    async def submit(self, person: str, card: TeamsCard, verb: str, inputs: dict | None = None) -> tuple[int, object]:
        """`person` clicks the legacy Action.Submit fallback of `verb`: a message whose `value` is the data plus the verb."""
        where = next((k for k in [*self.routing.channels, *self.routing.people] if self.conversation(k) == card.conversation),
                     card.conversation)
        value = {**card.execute_data(verb), "verb": verb, **(inputs or {})}
        return await self.send(self._activity("message", where, self._person(person), replyToId=card.id, value=value))

    async def say(self, person: str, text: str, channel: str | None = None, mention: str | None = None) -> tuple[int, object]:
        """`person` types `text` to Handoff in their 1:1 chat, or in `channel` with an @mention as Teams requires there.

        `mention` (a person key) @mentions that person where `{mention}` stands in `text`, as Teams sends it.
        """
        entities: list[dict] = []
        if mention:
            someone = self._person(mention)
            tag = f"<at>{someone['name']}</at>"
            text = text.replace("{mention}", tag)
            entities.append({"type": "mention", "text": tag, "mentioned": {"id": someone["id"], "name": someone["name"]}})
        if channel:
            tag = f"<at>{BOT['name']}</at>"
            text = f"{tag} {text}"
            entities.insert(0, {"type": "mention", "text": tag, "mentioned": BOT})
        fields: dict = {"text": text, "textFormat": "plain", **({"entities": entities} if entities else {})}
        return await self.send(self._activity("message", channel or person, self._person(person), **fields))

    # ---- what Handoff posted

    def messages(self, where: str) -> list[dict]:
        return list(self.connector.activities.get(self.conversation(where), []))

    def current(self, card: TeamsCard) -> TeamsCard:
        """The card as it is now, after any updates Handoff made in place."""
        return TeamsCard(card.conversation, card.id, self.connector.activity(card.conversation, card.id))

    def replies(self, card: TeamsCard) -> list[dict]:
        return [a for a in self.connector.activities.get(card.conversation, []) if a.get("replyToId") == card.id]

    async def reply_card(self, where: str, needle: str, timeout: float = 5.0) -> TeamsCard:
        """The latest card Handoff sent as an answer (a reply, like the inbox) in `where` whose content has `needle`."""
        conversation = self.conversation(where)

        def found() -> TeamsCard | None:
            for activity in reversed(self.connector.activities.get(conversation, [])):
                if activity.get("attachments") and activity.get("replyToId") and needle in json.dumps(activity["attachments"]):
                    return TeamsCard(conversation, activity["id"], activity)
            return None

        return await wait_until(found, timeout=timeout, what=f"a Teams card saying {needle!r} in {where}")

    def texts(self, where: str) -> list[str]:
        return [a.get("text") or "" for a in self.messages(where) if not a.get("attachments")]

    async def card(self, where: str, reference: str, timeout: float = 5.0) -> TeamsCard:
        """The top-level card for `reference` in a channel or a person's 1:1 chat, once it arrives."""
        conversation = self.conversation(where)

        def found() -> TeamsCard | None:
            for activity in self.connector.activities.get(conversation, []):
                if activity.get("attachments") and not activity.get("replyToId") and reference in json.dumps(activity["attachments"]):
                    return TeamsCard(conversation, activity["id"], activity)
            return None

        return await wait_until(found, timeout=timeout, what=f"a Teams card for {reference} in {where}")
