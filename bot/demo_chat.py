"""What the demo's people do, the same story on Slack or Teams and against Odoo or Dataverse: one adapter, not four stories."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .fakes.stack import LocalStack, button_binding
from .fakes.stack_teams import TeamsCard
from .fakes.waiting import wait_until

APPROVE, REJECT = "handoff.approve", "handoff.reject"
# The story's three orders in each ERP's demo seed: a large one Marc raised, one that drifts, a small one.
ORDERS = {"odoo": ("P00042", "P00043", "P00045"), "dataverse": ("PO-000123", "PO-000124", "PO-000125")}
APPROVED = {"odoo": "purchase", "dataverse": "approved"}
REJECTED = {"odoo": "cancel", "dataverse": "rejected"}


@dataclass
class DemoChat:
    """Cards found, buttons clicked, questions asked: Slack clicks and modals, or Teams invokes and messages."""

    stack: LocalStack

    @property
    def name(self) -> str:
        return {"slack": "Slack", "teams": "Teams"}[self.stack.chat]

    def where(self, key: str) -> str:
        """A channel key as this chat addresses it ('procurement' → C0PROCURE on Slack), or a person key as is."""
        channel = self.stack.routing.channels.get(key)
        return channel.slack or key if channel and self.stack.chat == "slack" else key

    async def card(self, key: str, reference: str):
        if self.stack.teams:
            return await self.stack.teams.card(key, reference)
        return await self.stack.card(self.where(key), reference)

    def current(self, card):
        if self.stack.teams:
            return self.stack.teams.current(card)
        return self.stack.slack.message(card.channel, card.ts)

    def version(self, card) -> int:
        current = self.current(card)
        data = current.execute_data(APPROVE) if isinstance(current, TeamsCard) else button_binding(current, APPROVE)
        return int(data["v"])

    def cards_for(self, key: str, reference: str) -> int:
        if self.stack.teams:
            return sum(1 for a in self.stack.teams.messages(key) if a.get("attachments") and reference in str(a["attachments"]))
        return sum(1 for m in self.stack.slack.messages.get(self.where(key), []) if m.thread_ts is None and reference in m.text)

    async def approve(self, person: str, card) -> str | None:
        """`person` approves; what they are told privately, or None when the card itself changed."""
        if self.stack.teams:
            _, body = await self.stack.teams.invoke(person, card, APPROVE)
            return body["value"] if body["type"].endswith("activity.message") else None
        before = len(self.stack.whispers_to(person))
        await self.stack.click(person, card, APPROVE)
        await self.stack.settled()
        whispers = self.stack.whispers_to(person)
        return whispers[-1] if len(whispers) > before else None

    async def reject(self, person: str, card, reason: str) -> str:
        """`person` rejects with `reason`; how the reason was asked for."""
        if self.stack.teams:
            await self.stack.teams.invoke(person, card, REJECT, {"reason": reason})
            return "the card's Reject form asks for the reason"
        await self.stack.click(person, card, REJECT)
        await wait_until(lambda: self.stack.slack.views, what="the reject modal")
        await self.stack.submit_modal(person, reason)
        return "a modal asks for the reason"

    async def ask(self, person: str, question: str) -> str:
        """`person` asks Handoff a question: /handoff in Slack, a message in their 1:1 chat in Teams."""
        if self.stack.teams:
            before = len(self.stack.teams.texts(person))
            await self.stack.teams.say(person, question)
            answer = await wait_until(lambda: self.stack.teams.texts(person)[before:], what=f"the answer to {person}")
            return _unescaped(answer[-1])
        channel = self.stack.routing.channels["procurement"].slack
        body = self.stack.signer.slash_command_body(self.stack.slack_id(person), person, channel, "procurement", question)
        _, text = await self.stack.post_slack(body)
        return text

    async def thread(self, card) -> list[str]:
        if self.stack.teams:
            replies = await wait_until(lambda: self.stack.teams.replies(card), what="a reply under the card")
            return [_unescaped(r.get("text") or "") for r in replies]
        replies = await wait_until(lambda: self.stack.slack.thread_replies(card.channel, card.ts), what="a reply in the thread")
        return [m.text for m in replies]


def _unescaped(markdown: str) -> str:
    """Teams text as a person reads it: without the backslashes that keep ERP text from turning into markdown."""
    return re.sub(r"\\(.)", r"\1", markdown)


def erp_notes(stack: LocalStack, reference: str) -> list[str]:
    """The notes on the order in the ERP: Odoo's chatter, or Dataverse notes (annotations)."""
    if stack.dataverse:
        return [f"{n.get('subject')}: {n.get('notetext')}" for n in stack.dataverse.fake.notes(stack.orders[reference])]
    order_id = stack.orders[reference]
    return [m["body"] for m in stack.odoo.db.records.get("mail.message", {}).values() if m.get("res_id") == order_id]
