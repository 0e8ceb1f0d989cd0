"""What every console handler needs: the running Core (looked up on the parent app) and the sign-in state."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from handoff.bot.core.context import Core

from .auth import ConsoleAuth
from .page import render


@dataclass(frozen=True)
class Console:
    core_key: web.AppKey[Core]
    auth: ConsoleAuth

    def core(self, request: web.Request) -> Core:
        return request.config_dict[self.core_key]

    def page(self, request: web.Request, title: str, body: str, status: int = 200) -> web.Response:
        # The sign-out form only makes sense when a token signed this browser in.
        csrf = self.auth.csrf
        return render(title, body, path=request.path, csrf=None if self.auth.local else csrf, status=status)


CONSOLE = web.AppKey("console", Console)
