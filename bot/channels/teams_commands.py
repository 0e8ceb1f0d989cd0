"""Teams' questions and commands: status answers, the pending inbox card, Approve all, delegation and reassign.

Mentions: a message that @mentions someone carries `<at>name</at>` in its text and an entity
`{"type": "mention", "mentioned": {"id": <MRI>, "name": …}, "text": "<at>name</at>"}`
(msteams-docs bots/how-to/conversations/channel-and-group-conversations.md, "Retrieve mentions"). The MRI is not the
Entra object id routing knows, so a mention is matched through the 1:1 references remembered at install, whose `user`
holds both.
"""

from __future__ import annotations

import logging

from handoff.bot.core import delegation, inbox, status
from handoff.bot.core.context import Core
from handoff.bot.core.models import ChatIdentity, Person, RequestStatus
from handoff.bot.core.ports import Approvals, ConversationDirectory
from handoff.bot.core.view import inert
from handoff.cards import adaptive
from handoff.cards.adaptive_inbox import InboxItem, render_inbox
from handoff.state import delegation_store

log = logging.getLogger(__name__)

# Each item holds three forms; a dozen keeps the card well under Teams' size budget (cards/adaptive.py BUDGET_BYTES).
INBOX_ITEMS = 12
DELEGATE_HELP = "Say `delegate @someone until 2026-12-01` (optionally `from 2026-11-24`), or `delegate off`."
NO_IDENTITY = "Teams did not say who you are (no Microsoft Entra object id), so Handoff cannot count this."


def names_requests(question: str) -> bool:
    """Whether the answer lists requests (status, pending, stuck), which only the asker may be allowed to see."""
    return status.intent(question)[0] in {status.Intent.STATUS, status.Intent.PENDING, status.Intent.STUCK}


class TeamsCommands:
    """What the Teams bot answers to typed text, and the card verbs beyond a single decision."""

    verbs = frozenset({adaptive.BULK_APPROVE, adaptive.REASSIGN})

    def __init__(self, core: Core, approvals: Approvals, directory: ConversationDirectory) -> None:
        self.core = core
        self.approvals = approvals
        self.directory = directory

    async def reply(self, identity: ChatIdentity, text: str, mentions: list[dict]) -> str | dict:
        """Plain text, or (for "pending") the inbox card; `mentions` are the message's mention entities but the bot's."""
        person = self.approvals.person_for(identity)
        kind, rest = status.intent(text)
        if kind is status.Intent.PENDING and person is not None:
            return self.inbox(person)
        if kind is status.Intent.DELEGATE:
            return await self._delegate(person, rest, mentions)
        return status.answer(self.core, person, text)

    def inbox(self, person: Person, notice: list[str] | None = None) -> str | dict:
        """The inbox card, with `notice` (the last click's result) on top; with nothing waiting and nothing to say, text."""
        title, shown = inbox.pending(self.core, person, INBOX_ITEMS)
        if not shown and not notice:
            return title
        items = [InboxItem(r.id, r.version, r.stage, status.line(self.core, r), r.packet.record.url, tuple(self.reassign_to(r.id)))
                 for r in shown]
        return render_inbox(title, items, inbox.items_of(inbox.bulk_approvable(self.core, shown)), notice)

    def reassign_to(self, request_id: str) -> list[tuple[str, str]]:
        """(key, name) of everyone the request's open stage may be reassigned to; [] once it is decided."""
        request = self.core.store.get_request(request_id)
        if request is None or request.status is not RequestStatus.OPEN:
            return []
        return [(p.key, p.name) for p in delegation.candidates(self.core, request)]

    async def execute(self, identity: ChatIdentity | None, verb: str, data: dict) -> tuple[str, bool]:
        """Run Approve all or Reassign; (what to tell the clicker, whether the request's card shows the result instead)."""
        if identity is None:
            return NO_IDENTITY, False
        person = self.approvals.person_for(identity)
        if verb == adaptive.BULK_APPROVE:
            items = inbox.parse_items(data.get("items"))
            if not items:
                return "This Approve all button is unreadable, so nothing was approved. Ask `pending` again for a fresh inbox.", False
            results = await inbox.bulk_approve(self.approvals, identity, items)
            return inbox.bulk_report(self.core, items, results), False
        request_id, _, stage = adaptive.binding(data)
        picked = self._picked(data)
        said = self._reassign(person, request_id, stage, picked or "")
        return said, picked is not None and delegation_store.assignee(self.core.store.conn, request_id, stage) == picked

    @staticmethod
    def _picked(data: dict) -> str | None:
        request_id = data.get("r")
        return str(data.get(f"{adaptive.ASSIGNEE}.{request_id}") or data.get(adaptive.ASSIGNEE) or "") or None

    def _reassign(self, by: Person | None, request_id: str, stage: int, picked: str) -> str:
        request, to = self.core.store.get_request(request_id), self.core.routing.people.get(picked)
        if by is None:
            return status.UNKNOWN_PERSON
        if request is None:
            return "Handoff has no record of this request; it may come from another installation."
        if to is None or picked not in {key for key, _ in self.reassign_to(request_id)}:
            return f"Pick who decides instead from the list on the card; “{inert(picked or 'nobody')}” can't take {inert(request.reference)}."
        if request.stage != stage:
            return f"Stage {stage + 1} of {inert(request.reference)} is already decided; nothing was reassigned."
        return delegation.reassign(self.core, request, by, to)

    async def _delegate(self, person: Person | None, text: str, mentions: list[dict]) -> str:
        if person is None:
            return status.UNKNOWN_PERSON
        if text.strip().lower() == "off":
            return delegation.revoke(self.core, person)
        try:
            until, starts = delegation.parse_window(text, DELEGATE_HELP)
        except ValueError as error:
            return str(error)
        delegate_to = await self._mentioned(mentions) if mentions else self._named(delegation.without_window(text))
        if delegate_to is None:
            who = (mentions[0].get("mentioned") or {}).get("name") if mentions else delegation.without_window(text)
            if not who:
                return f"Whom should your approvals go to? {DELEGATE_HELP}"
            return f"Handoff doesn't know {who}, so it can't route approvals to them. Ask an admin to add them to the routing config."
        return delegation.grant(self.core, person, delegate_to, until, starts)

    async def _mentioned(self, mentions: list[dict]) -> Person | None:
        """The routing person behind the first user mention: its MRI matched against remembered 1:1 references."""
        mentioned = mentions[0].get("mentioned") or {}
        for person in self.core.routing.people.values():
            if not person.teams:
                continue
            reference = await self.directory.find_conversation("teams", f"user:{person.teams}")
            if reference and (reference.get("user") or {}).get("id") == mentioned.get("id"):
                return person
        return self._named(str(mentioned.get("name") or ""))

    def _named(self, words: str) -> Person | None:
        """A person typed by routing key or by full name, ignoring case."""
        wanted = words.strip().lstrip("@").lower()
        return next((p for key, p in self.core.routing.people.items() if wanted and wanted in {key.lower(), p.name.lower()}), None)
