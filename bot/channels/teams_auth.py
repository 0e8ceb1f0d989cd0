"""Teams settings and Bot Framework authentication: inbound JWT checks and outbound client-credential tokens."""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace
from typing import Literal

import requests
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botframework.connector.auth import (
    AppCredentials,
    AuthenticationConstants,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
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


def build_authentication(settings: TeamsSettings, tokens: TokenSource) -> ConfigurationBotFrameworkAuthentication:
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
    return ConfigurationBotFrameworkAuthentication(configuration, credentials_factory=factory)


async def check_credentials(settings: TeamsSettings, tokens: TokenSource) -> None:
    """Fail at start, not at the first card, when Microsoft refuses the app's credentials."""
    if settings.local_development:
        log.warning("teams.local_development", extra={"detail": "Teams requests are accepted WITHOUT authentication"})
        return
    try:
        await asyncio.to_thread(tokens.token)
    except ChatError as error:
        raise ConfigError(str(error)) from error
