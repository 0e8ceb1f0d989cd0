"""Console sign-in with the admin token: an HttpOnly SameSite=Strict session cookie, and CSRF checks on every form."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from aiohttp import web

from .page import h, render
from .settings import ConsoleSettings

log = logging.getLogger(__name__)

COOKIE = "handoff_console"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ConsoleAuth:
    """Derives the session cookie and CSRF token from the admin token, so neither reveals it and a new token signs everyone out."""

    def __init__(self, settings: ConsoleSettings, secure_cookie: bool) -> None:
        self.local = settings.local_development
        self._token = settings.token.get_secret_value() if settings.token else None
        # Without a token (local development) a per-process key still makes forms unforgeable from other sites.
        self._key = (self._token or secrets.token_hex(32)).encode()
        self.secure_cookie = secure_cookie
        if self.local:
            log.warning("console.sign_in_disabled", extra={"setting": "HANDOFF_CONSOLE__LOCAL_DEVELOPMENT", "risk": "anyone who reaches this port can retry, drop and read everything"})

    def _derive(self, purpose: str) -> str:
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).hexdigest()

    @property
    def configured(self) -> bool:
        return self.local or self._token is not None

    @property
    def csrf(self) -> str:
        return self._derive("csrf")

    def signed_in(self, request: web.Request) -> bool:
        return self.local or same_secret(request.cookies.get(COOKIE, ""), self._derive("session"))

    def token_matches(self, given: str) -> bool:
        return self._token is not None and same_secret(given, self._token)

    def sign_in(self, response: web.StreamResponse) -> None:
        response.set_cookie(COOKIE, self._derive("session"), httponly=True, samesite="Strict", path="/console",
                            secure=self.secure_cookie)

    @staticmethod
    def sign_out(response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path="/console")


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison that also takes non-ASCII input (compare_digest raises TypeError on such str)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def same_origin(request: web.Request) -> bool:
    """Browsers send Origin on POST; a form posted from another site names that site (absent Origin: not a browser form)."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def guard(auth: ConsoleAuth) -> Callable:
    """Middleware for the console: off until configured, sign-in for pages, CSRF for forms."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not auth.configured:
            return render("Console is off", "<p>The console needs sign-in configured. Set <code>HANDOFF_CONSOLE__TOKEN</code> "
                          "to a long random admin token (or <code>HANDOFF_CONSOLE__LOCAL_DEVELOPMENT=true</code> on a "
                          "developer machine only) and restart Handoff.</p>", status=503)
        is_login = request.path == "/console/login"
        if request.method == "POST":
            if not same_origin(request):
                log.warning("console.form_refused", extra={"path": request.path, "reason": "cross-origin"})
                return render("Form refused", "<p>This form was posted from another site. Open the console and submit it from there.</p>", status=403)
            if not is_login and not auth.signed_in(request):
                return render("Sign-in needed", '<p>Your session has ended. <a href="/console/login">Sign in</a> and submit again.</p>', status=401)
            form = await request.post()
            if not is_login and not same_secret(str(form.get("csrf", "")), auth.csrf):
                log.warning("console.form_refused", extra={"path": request.path, "reason": "csrf token missing or wrong"})
                return render("Form refused", "<p>The form's security token is missing or out of date. Reload the page and submit it again.</p>", status=403)
        elif not is_login and not auth.signed_in(request):
            raise web.HTTPSeeOther(f"/console/login?next={quote(request.path_qs)}")
        return await handler(request)

    return middleware


def login_page(auth: ConsoleAuth, next_path: str, problem: str | None = None, status: int = 200) -> web.Response:
    error = f'<p class="error">{h(problem)}</p>' if problem else ""
    return render("Sign in", f"""{error}<form method="post" action="/console/login">
<input type="hidden" name="next" value="{h(next_path)}">
<p><label>Admin token <input type="password" name="token" autocomplete="current-password" autofocus required></label></p>
<p><button>Sign in</button></p></form><p>The token is the value of <code>HANDOFF_CONSOLE__TOKEN</code> on the server.</p>""", status=status)


def safe_next(value: str) -> str:
    """Only paths inside the console: an open redirect would let a link send a signed-in operator anywhere."""
    return value if value.startswith("/console/") and not value.startswith("//") and "\\" not in value else "/console/"


def login_routes(auth: ConsoleAuth) -> list[web.RouteDef]:
    async def show(request: web.Request) -> web.Response:
        if auth.signed_in(request):
            raise web.HTTPSeeOther(safe_next(request.query.get("next", "")))
        return login_page(auth, request.query.get("next", "/console/"))

    async def submit(request: web.Request) -> web.Response:
        form = await request.post()
        target = safe_next(str(form.get("next", "")))
        if not auth.token_matches(str(form.get("token", ""))):
            log.warning("console.sign_in_refused", extra={"remote": request.remote})
            return login_page(auth, target, "That token is not the console's admin token. Check HANDOFF_CONSOLE__TOKEN on the server.", 401)
        log.info("console.signed_in", extra={"remote": request.remote})
        response = web.Response(status=303, headers={"Location": target})
        auth.sign_in(response)
        return response

    async def logout(request: web.Request) -> web.Response:
        response = web.Response(status=303, headers={"Location": "/console/login"})
        auth.sign_out(response)
        return response

    return [web.get("/login", show), web.post("/login", submit), web.post("/logout", logout)]

