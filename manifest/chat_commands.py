"""The words people type to Handoff, listed once for the Teams command menu and the Slack usage hint."""

from __future__ import annotations

from typing import NamedTuple


class ChatCommand(NamedTuple):
    title: str
    usage: str
    description: str


CHAT_COMMANDS: tuple[ChatCommand, ...] = (
    ChatCommand("status", "status <reference>", "Where a request stands, who holds it and for how long, e.g. status P00042."),
    ChatCommand("my approvals", "my approvals", "The requests waiting for your decision."),
    ChatCommand("what's stuck", "what's stuck", "Requests that have waited past their reminder time, oldest first."),
    ChatCommand("help", "help", "What Handoff can do and how to ask it."),
)
