"""Teams settings and Bot Framework authentication: inbound JWT checks and outbound client-credential tokens."""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace
from typing import Literal

import requests
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AppCredentials,
    AuthenticateRequestResult,
    AuthenticationConstants,
    ClaimsIdentity,
    ConnectorFactory,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
    UserTokenClient,
)
from pydantic import BaseModel, SecretStr, model_validator

from handoff.bot.core.errors import ChatError, ConfigError

log = logging.getLogger(__name__)

# Refresh this long before the token service's own expiry, so a token never dies mid-call.
EXPIRY_MARGIN_S = 300


class TeamsSettings(BaseModel):
    """The Azure Bot registration, plus endpoints overridable for tests and sovereign clouds.

    Defaults are the public cloud's (botframework-connector `auth/authentication_constants.py`); US Gov values are in
    `auth/government_constants.py`.
    """

    app_id: str
    app_password: SecretStr = SecretStr("")
    app_type: Literal["MultiTenant", "SingleTenant"] = "MultiTenant"
    tenant_id: str | None = None
    # Accept requests without a token (the local Teams playground sends none). Never in production.
    local_development: bool = False
    login_url: str = "https://login.microsoftonline.com"
    oauth_scope: str = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
    token_issuer: str = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
    openid_metadata_url: str = AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
    # Read Handoff's own recent cards back through Microsoft Graph when a post's answer was lost (RELIABILITY.md,
    # "mid_post"). Needs the RSC permissions `handoff manifest teams --graph-read true` asks for, granted per team/chat.
    graph_read: bool = False
    graph_url: str = "https://graph.microsoft.com/v1.0"
    # Where the Graph token comes from; login_url unless set (tests point it at a local identity platform).
    graph_login_url: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> TeamsSettings:
        if self.app_type == "SingleTenant" and not self.tenant_id:
            raise ValueError(
                "A single-tenant Teams bot needs its tenant: set HANDOFF_TEAMS__TENANT_ID to the Directory (tenant) ID "
                "shown on the Azure Bot's app registration, or set HANDOFF_TEAMS__APP_TYPE=MultiTenant."
            )
        if not self.local_development and not self.app_password.get_secret_value():
            raise ValueError(
                "The Teams app password is missing: set HANDOFF_TEAMS__APP_PASSWORD to a client secret of the Azure Bot's "
                "app registration, or HANDOFF_TEAMS__LOCAL_DEVELOPMENT=true to run against the local playground only."
            )
        return self

    @property
    def token_url(self) -> str:
        # Multi-tenant bots get tokens from the botframework.com tenant, single-tenant bots from their own.
        tenant = self.tenant_id if self.app_type == "SingleTenant" else AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT
        return f"{self.login_url.rstrip('/')}/{tenant}/oauth2/v2.0/token"


class TokenSource:
    """Client-credentials tokens for the Bot Connector (or, given `url` and `scope`, another resource such as
    Microsoft Graph), cached until shortly before they expire."""

    def __init__(self, settings: TeamsSettings, url: str | None = None, scope: str | None = None) -> None:
        self.settings = settings
        self.url = url or settings.token_url
        self.scope = scope or settings.oauth_scope
        self._token = ""
        self._expires_at = 0.0

    def token(self) -> str:
        """A valid access token; blocking, because botbuilder asks for it from a synchronous hook."""
        if self._token and time.monotonic() < self._expires_at:
            return self._token
        settings, url = self.settings, self.url
        scope = self.scope if self.scope.endswith("/.default") else f"{self.scope}/.default"
        form = {"grant_type": "client_credentials", "client_id": settings.app_id,
                "client_secret": settings.app_password.get_secret_value(), "scope": scope}
        try:
            response = requests.post(url, data=form, timeout=10)
            body = response.json()
        except (requests.RequestException, ValueError) as error:
            cause = type(error).__name__
            raise ChatError(f"The Teams token service at {url} did not answer ({cause}); Handoff will retry.") from error
        if response.status_code != 200 or "access_token" not in body:
            code = body.get("error", response.status_code) if isinstance(body, dict) else response.status_code
            log.error("teams.token_refused", extra={"token_url": url, "status": response.status_code, "error": code})
            raise ChatError(
                f"Microsoft refused Handoff's Teams credentials ({code}) at {url}. Check HANDOFF_TEAMS__APP_ID and "
                "HANDOFF_TEAMS__APP_PASSWORD (Azure Bot > Configuration), and HANDOFF_TEAMS__APP_TYPE/TENANT_ID.",
                permanent=response.status_code in (400, 401),
            )
        self._token = body["access_token"]
        self._expires_at = time.monotonic() + float(body.get("expires_in", 3599)) - EXPIRY_MARGIN_S
        return self._token


class _BearerCredentials(AppCredentials):
    def __init__(self, app_id: str, tokens: TokenSource) -> None:
        super().__init__(app_id=app_id, oauth_scope=tokens.settings.oauth_scope)
        self._tokens = tokens

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self._tokens.token()


class ClientSecretCredentialsFactory(ServiceClientCredentialsFactory):
    """Outbound credentials from the configured token endpoint.

    botbuilder's own factory goes through MSAL, which only accepts https authorities it can discover on
    login.microsoftonline.com; this one posts the documented client-credentials form to whatever endpoint is set.
    """

    def __init__(self, settings: TeamsSettings, tokens: TokenSource) -> None:
        self.settings = settings
        self.tokens = tokens

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == self.settings.app_id

    async def is_authentication_disabled(self) -> bool:
        # botbuilder lets an activity without Authorization through only when this says so.
        return self.settings.local_development

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        if self.settings.local_development:
            return MicrosoftAppCredentials.empty()
        if app_id != self.settings.app_id:
            raise PermissionError(f"Credentials were asked for app {app_id}, but Handoff is app {self.settings.app_id}.")
        return _BearerCredentials(app_id, self.tokens)


def _app_id(claims: ClaimsIdentity) -> str | None:
    # As botbuilder's _BuiltinBotFrameworkAuthentication.get_app_id: the audience for channel tokens, else appid.
    return claims.get_claim_value(AuthenticationConstants.AUDIENCE_CLAIM) or claims.get_claim_value(AuthenticationConstants.APP_ID_CLAIM)


class _SharedConnectors(ConnectorFactory):
    """botbuilder's connector factory for one app id, handing out the client it built first for each serviceUrl."""

    def __init__(self, built: ConnectorFactory, app_id: str | None, clients: dict[tuple, ConnectorClient]) -> None:
        self._built, self._app_id, self._clients = built, app_id, clients

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = (self._app_id, service_url, audience)
        if key not in self._clients:
            client = await self._built.create(service_url, audience)
            # Two first requests may race here; the loser's client never opened a session, so dropping it is free.
            self._clients.setdefault(key, client)
        return self._clients[key]


class ReusingAuthentication(ConfigurationBotFrameworkAuthentication):
    """botbuilder's authentication whose outbound clients are built once per app, serviceUrl and audience.

    CloudAdapter asks for a ConnectorClient and a UserTokenClient on every inbound activity, before the bot runs. Each
    builds a msrest Configuration whose retry policy filters 999 status codes against a 500-entry list, several ms of
    the event loop per client, so every card click paid it twice before its answer. The clients hold no per-request
    state (credentials read the shared TokenSource on each call), so one of each serves every request. The inbound
    token is still validated in full on every request.
    """

    def __init__(self, configuration: object, credentials_factory: ServiceClientCredentialsFactory) -> None:
        super().__init__(configuration, credentials_factory=credentials_factory)
        self._connectors: dict[tuple, ConnectorClient] = {}
        self._user_tokens: dict[str | None, UserTokenClient] = {}

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        result = await super().authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _SharedConnectors(result.connector_factory, _app_id(result.claims_identity), self._connectors)
        return result

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _SharedConnectors(super().create_connector_factory(claims_identity), _app_id(claims_identity), self._connectors)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        app_id = _app_id(claims_identity)
        if app_id not in self._user_tokens:
            self._user_tokens.setdefault(app_id, await super().create_user_token_client(claims_identity))
        return self._user_tokens[app_id]

    async def close(self) -> None:
        """Close the HTTP sessions of the connector clients."""
        clients, self._connectors = list(self._connectors.values()), {}
        for client in clients:
            await client.__aexit__(None, None, None)


def build_authentication(settings: TeamsSettings, tokens: TokenSource) -> ReusingAuthentication:
    """The botbuilder authentication for CloudAdapter, every endpoint taken from the settings."""
    # Attribute names read by ConfigurationBotFrameworkAuthentication (botbuilder-integration-aiohttp
    # `configuration_bot_framework_authentication.py`); setting any of them selects the parameterized path.
    configuration = SimpleNamespace(
        VALIDATE_AUTHORITY=True,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=settings.token_url,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=settings.oauth_scope,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=settings.token_issuer,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.openid_metadata_url,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
        OAUTH_URL=AuthenticationConstants.OAUTH_URL,
    )
    factory = ClientSecretCredentialsFactory(settings, tokens)
    return ReusingAuthentication(configuration, credentials_factory=factory)


async def check_credentials(settings: TeamsSettings, tokens: TokenSource) -> None:
    """Fail at start, not at the first card, when Microsoft refuses the app's credentials."""
    if settings.local_development:
        log.warning("teams.local_development", extra={"detail": "Teams requests are accepted WITHOUT authentication"})
        return
    try:
        await asyncio.to_thread(tokens.token)
    except ChatError as error:
        raise ConfigError(str(error)) from error
