"""A local Microsoft identity platform v2 token endpoint: client credentials, and the OpenID document MSAL reads.

Wire shapes: MicrosoftDocs/entra-docs `docs/identity-platform/v2-oauth2-client-creds-grant-flow.md` (request form,
success `{token_type, expires_in, access_token}`, error `{error, error_description, error_codes, timestamp,
trace_id, correlation_id}`). MSAL first GETs `<authority>/v2.0/.well-known/openid-configuration` and posts to its
`token_endpoint` (msal/authority.py). Serve this over HTTPS: MSAL refuses any other authority.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from handoff.bot.core.ports import Clock, SystemClock

TOKEN_LIFETIME = timedelta(seconds=3599)


@dataclass(frozen=True)
class IssuedToken:
    """What the fake knows about a token it issued; resource fakes look tokens up here instead of verifying JWTs."""

    client_id: str
    tenant: str
    audience: str
    expires_at: datetime


class FakeEntra:
    """Issues opaque bearer tokens to registered clients and remembers them, so resource fakes can check them."""

    def __init__(self, clock: Clock | None = None, tenant: str = "contoso.onmicrosoft.com") -> None:
        self.clock = clock or SystemClock()
        self.tenants = {tenant}
        self._clients: dict[str, str] = {}
        self._tokens: dict[str, IssuedToken] = {}
        self.token_requests = 0
        self.app = web.Application()
        self.app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration)
        self.app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)

    def register(self, client_id: str, secret: str) -> None:
        """An app registration with one client secret."""
        self._clients[client_id] = secret

    def introspect(self, token: str) -> IssuedToken | None:
        return self._tokens.get(token)

    async def _openid_configuration(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if tenant not in self.tenants:
            return self._error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = f"{request.scheme}://{request.host}/{tenant}"
        # A subset of the v2 document; MSAL needs authorization_endpoint and token_endpoint (msal/authority.py).
        return web.json_response({
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{request.scheme}://{request.host}/{tenant}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        tenant = request.match_info["tenant"]
        form = await request.post()
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        scope, grant = str(form.get("scope", "")), str(form.get("grant_type", ""))
        if tenant not in self.tenants:
            return self._error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if grant != "client_credentials":
            return self._error(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")
        if client_id not in self._clients:
            return self._error(400, "unauthorized_client", 700016,
                               f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.")
        if not secrets.compare_digest(secret, self._clients[client_id]):
            return self._error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the "
                               "request is the client secret value, not the client secret ID, for a secret added to app "
                               f"'{client_id}'.")
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return self._error(400, "invalid_scope", 70011,
                               f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid.")
        token = secrets.token_urlsafe(32)
        self._tokens[token] = IssuedToken(client_id, tenant, scopes[0].removesuffix("/.default"), self.clock.now() + TOKEN_LIFETIME)
        seconds = int(TOKEN_LIFETIME.total_seconds())
        return web.json_response({"token_type": "Bearer", "expires_in": seconds, "ext_expires_in": seconds, "access_token": token})

    def _error(self, status: int, error: str, code: int, text: str) -> web.Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        timestamp = self.clock.now().strftime("%Y-%m-%d %H:%M:%SZ")
        return web.json_response({
            "error": error,
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}",
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
        }, status=status)
