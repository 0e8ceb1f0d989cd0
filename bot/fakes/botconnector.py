"""A local Bot Connector: the Teams REST API a bot calls, the token service it authenticates with, and the
OpenID issuer whose keys sign what the connector sends to the bot.

Paths and shapes follow botbuilder-python `botframework/connector/aio/operations_async/_conversations_operations_async.py`
(the calls the SDK makes), MicrosoftDocs/bot-docs `articles/rest-api/bot-framework-rest-connector-authentication.md`
(OpenID metadata, `endorsements`, token claims) and msteams-docs `msteams-platform/bots/build-conversational-capability.md`
(error codes) and `msteams-platform/bots/how-to/rate-limit.md` (per-thread limits).
"""

from __future__ import annotations

import functools
import itertools
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from handoff.bot.core.ports import Clock, SystemClock

from .threaded import ThreadedServer

ISSUER = "https://api.botframework.com"
SCOPE = "https://api.botframework.com/.default"
MULTI_TENANT = "botframework.com"
# Per bot per thread: (window in seconds, operations allowed) — rate-limit.md, "Send to conversation".
THREAD_LIMITS = ((1, 7), (2, 8), (30, 60), (3600, 1800))
# rate-limit.md: "The global limit per app per tenant is 30 Requests Per Second (RPS)"; this fake serves one tenant.
APP_LIMITS = ((1, 30),)


def _error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    # The connector's ErrorResponse: {"error": {"code", "message"}} (botbuilder-schema `ErrorResponse`/`Error`).
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _aad_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


@functools.cache
def _signing_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """One published key and one unpublished key per process, shared by every fake.

    botframework-connector caches OpenID signing keys per metadata URL for the whole process
    (`JwtTokenExtractor.metadataCache`); a later fake on a reused port must not be refused for a key it never had.
    """
    return (rsa.generate_private_key(public_exponent=65537, key_size=2048),
            rsa.generate_private_key(public_exponent=65537, key_size=2048))


class FakeBotConnector:
    """Bot Connector + Bot Framework token issuer for one bot, recording what the bot sent."""

    def __init__(
        self,
        app_id: str,
        app_password: str,
        *,
        tenant_id: str | None = None,
        channel_id: str = "msteams",
        require_auth: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self.app_id = app_id
        self.channel_id = channel_id
        self.require_auth = require_auth
        self.clock = clock or SystemClock()
        self.url = ""
        self.activities: dict[str, list[dict]] = defaultdict(list)
        self.created: list[dict] = []
        # When each activity arrived and was last replaced: what Graph's view of the same messages shows (fakes/graph.py).
        self.sent_at: dict[str, datetime] = {}
        self.updated_at: dict[str, datetime] = {}
        self.token_requests: list[dict] = []
        self.kid = "fake-key-1"
        self._password = app_password
        self._tenants = {MULTI_TENANT} | ({tenant_id} if tenant_id else set())
        self._key, self._stranger = _signing_keys()
        self._tokens: dict[str, float] = {}
        self._installed: set[str] = set()
        self._users: dict[str, str] = {}  # MRI -> AAD object id
        self._conversations: set[str] = set()
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._app_calls: deque[float] = deque()
        self.rate_limited_count = 0  # 429s answered
        self._refuse_next = 0
        self._ids = itertools.count(1718364000001)

    # ---- what tests arrange and inspect

    def mri(self, aad_object_id: str) -> str:
        """A person's MRI (`29:` id) as Teams sends it in `from`; knowing it installs nothing."""
        mri = f"29:fake-{aad_object_id}"
        self._users[mri] = aad_object_id
        return mri

    def installed_for(self, aad_object_id: str, installed: bool = True) -> str:
        """Install (or uninstall) the app for one person; returns their MRI."""
        (self._installed.add if installed else self._installed.discard)(aad_object_id)
        return self.mri(aad_object_id)

    def add_conversation(self, conversation_id: str) -> None:
        """A channel or chat where the app is installed: the bot may post there."""
        self._conversations.add(conversation_id)

    def throttle_next(self, count: int = 1) -> None:
        """Answer the next `count` operations with a 429, as a limit this fake doesn't model (another bot's traffic) would."""
        self._refuse_next += count

    def activity(self, conversation_id: str, activity_id: str) -> dict:
        return next(a for a in self.activities[conversation_id] if a["id"] == activity_id)

    def issue_token(
        self, audience: str | None = None, service_url: str | None = None, *, expired: bool = False, kid: str | None = None
    ) -> str:
        """A JWT as the Bot Connector signs it for calls to the bot; `kid` other than ours signs with an unpublished key."""
        now = int(time.time())
        # Past botbuilder's 5-minute clock tolerance when expired.
        start = now - 7200 if expired else now - 60
        claims = {"iss": ISSUER, "aud": audience or self.app_id, "serviceurl": service_url or self.service_url,
                  "nbf": start, "exp": start + 3600}
        key = self._key if kid in (None, self.kid) else self._stranger
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or self.kid})

    @property
    def service_url(self) -> str:
        return f"{self.url}/"

    @property
    def openid_metadata_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    def token_url(self, tenant: str = MULTI_TENANT) -> str:
        return f"{self.url}/{tenant}/oauth2/v2.0/token"

    @contextmanager
    def serve(self) -> Iterator[FakeBotConnector]:
        """Run on loopback in its own thread (see ThreadedServer for why)."""
        with ThreadedServer(self.app()) as server:
            self.url = server.url
            yield self

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._openid)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._send)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        return app

    # ---- the issuer

    async def _openid(self, request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        return web.json_response({
            "issuer": ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": f"{base}/v1/.well-known/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        })

    async def _keys(self, request: web.Request) -> web.Response:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        # `endorsements` lists the channels this key may sign for; botbuilder checks the activity's channelId is in it.
        return web.json_response({"keys": [{**jwk, "use": "sig", "kid": self.kid, "endorsements": [self.channel_id]}]})

    async def _token(self, request: web.Request) -> web.Response:
        # Client-credentials grant as login.microsoftonline.com answers it
        # (learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
        form = await request.post()
        tenant = request.match_info["tenant"]
        self.token_requests.append({"tenant": tenant, "client_id": form.get("client_id"), "scope": form.get("scope")})
        if tenant not in self._tenants:
            return _aad_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
        if form.get("client_id") != self.app_id or form.get("client_secret") != self._password:
            return _aad_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        if form.get("scope") != SCOPE:
            return _aad_error(400, "invalid_scope", f"AADSTS70011: The provided scope '{form.get('scope')}' is not valid.")
        token = secrets.token_urlsafe(24)
        self._tokens[token] = self._now() + 3599
        return web.json_response({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    # ---- the connector

    def _authorized(self, request: web.Request) -> bool:
        if not self.require_auth:
            return True
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and self._tokens.get(token, 0) > self._now()

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _throttled(self, key: str) -> web.Response | None:
        """A 429 when one more operation on `key` would break any per-thread window or the app's per-tenant one;
        a refused call is not counted."""
        now, counted = self._now(), ((self._calls[key], THREAD_LIMITS), (self._app_calls, APP_LIMITS))
        if self._refuse_next:
            self._refuse_next -= 1
            return self._too_many()
        for calls, limits in counted:
            while calls and calls[0] <= now - limits[-1][0]:
                calls.popleft()
            if any(sum(1 for t in calls if t > now - window) >= limit for window, limit in limits):
                return self._too_many()
        for calls, _ in counted:
            calls.append(now)
        return None

    def _too_many(self) -> web.Response:
        self.rate_limited_count += 1
        # rate-limit.md documents the status only: no Retry-After, so clients back off on their own.
        # [UNVERIFIED] the body's code and message.
        return _error(429, "Throttled", "Too many requests.")

    async def _body(self, request: web.Request) -> dict | web.Response:
        if not self._authorized(request):
            # The connector's own 401 body [UNVERIFIED: wording from memory of the ASP.NET host].
            return web.json_response({"message": "Authorization has been denied for this request."}, status=401)
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "BadArgument", "The request body is not JSON.")
        return body if isinstance(body, dict) else _error(400, "BadArgument", "The request body must be a JSON object.")

    async def _create(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        members = body.get("members") or []
        if body.get("isGroup") or len(members) != 1:
            return _error(400, "BadArgument", "Only 1:1 conversations with exactly one member can be created.")
        member = members[0]
        aad = member.get("aadObjectId") or self._users.get(member.get("id", ""), member.get("id", ""))
        if aad not in self._installed:
            # build-conversational-capability.md: "Bot isn't installed in user's personal scope".
            return _error(403, "ForbiddenOperationException", "Bot isn't installed in user's personal scope")
        if throttled := self._throttled(f"create:{aad}"):
            return throttled
        self.created.append(body)
        conversation = f"a:fake-personal-{aad}"
        self._conversations.add(conversation)
        answer = {"id": conversation}
        if isinstance(body.get("activity"), dict):
            answer["activityId"] = self._store(conversation, body["activity"])
        return web.json_response(answer, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        conversation = request.match_info["conversation"]
        if conversation not in self._conversations:
            return _error(404, "ConversationNotFound", "Conversation not found.")
        if throttled := self._throttled(conversation):
            return throttled
        if "activity" in request.match_info:
            body = {**body, "replyToId": request.match_info["activity"]}
        return web.json_response({"id": self._store(conversation, body)}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        conversation, activity_id = request.match_info["conversation"], request.match_info["activity"]
        if throttled := self._throttled(conversation):
            return throttled
        stored = [a for a in self.activities.get(conversation, []) if a["id"] == activity_id]
        if not stored:
            return _error(404, "ActivityNotFoundInConversation", "Conversation not found.")
        stored[0].update({**body, "id": activity_id, "updates": stored[0].get("updates", 0) + 1})
        self.updated_at[activity_id] = self.clock.now()
        return web.json_response({"id": activity_id})

    def _store(self, conversation: str, activity: dict) -> str:
        activity_id = str(next(self._ids))
        self.activities[conversation].append({**activity, "id": activity_id})
        self.sent_at[activity_id] = self.clock.now()
        return activity_id


async def send_activity(app_url: str, activity: dict, token: str | None = None) -> tuple[int, object]:
    """POST an activity to a bot's messaging endpoint the way the connector does; returns (status, parsed body)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.post(app_url, json=activity, headers=headers) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text) if text else None
            except json.JSONDecodeError:
                return response.status, text
