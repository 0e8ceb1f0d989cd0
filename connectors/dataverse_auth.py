"""Access tokens for the Dataverse Web API: MSAL client credentials, run off the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from handoff.bot.core.errors import ErpRefused, ErpUnavailable

if TYPE_CHECKING:
    from .dataverse_settings import DataverseSettings

log = logging.getLogger(__name__)

# Errors from the token endpoint that a retry can cure; anything else (invalid_client, unauthorized_client,
# invalid_scope) needs a person to fix the app registration or the settings.
# https://learn.microsoft.com/entra/identity-platform/reference-error-codes (OAuth error codes)
TRANSIENT_TOKEN_ERRORS = {"temporarily_unavailable", "server_error"}


class TokenProvider(Protocol):
    async def token(self) -> str:
        """A bearer token for the Dataverse Web API; raises ErpRefused or ErpUnavailable."""

    def forget(self) -> None:
        """Drop the cached token: Dataverse refused it, so the next `token()` must fetch a new one."""


class MsalTokenProvider:
    """Client-credentials tokens from Microsoft Entra ID through MSAL.

    MSAL keeps the token in its own cache: since 1.23 `acquire_token_for_client` looks there first, treats a
    token with under 5 minutes left as expired and refreshes it early when the server sent `refresh_in`
    (msal/application.py `_acquire_token_silent_with_error`), so no second cache lives here.
    """

    def __init__(self, settings: DataverseSettings, *, verify: str | None = None) -> None:
        self._settings = settings
        self._verify = verify  # a CA bundle path, for a private PKI or the local fake's certificate
        self._app: msal.ConfidentialClientApplication | None = None
        self._init_lock = threading.Lock()

    async def token(self) -> str:
        # MSAL is synchronous (requests); building the app already fetches the OpenID configuration.
        result = await asyncio.to_thread(self._acquire)
        if "access_token" in result:
            return result["access_token"]
        error = result.get("error", "unknown_error")
        description = result.get("error_description", "").splitlines()[0] if result.get("error_description") else ""
        log.warning("dataverse.token_refused", extra={"error": error, "client_id": self._settings.client_id})
        if error in TRANSIENT_TOKEN_ERRORS:
            raise ErpUnavailable(f"Microsoft Entra ID could not issue a Dataverse token right now ({error}: {description}).")
        raise ErpRefused(
            f"Microsoft Entra ID refused a Dataverse token for app {self._settings.client_id} ({error}: {description}). "
            "Check HANDOFF_DATAVERSE__TENANT_ID, __CLIENT_ID and __CLIENT_SECRET against the app registration "
            "(Entra admin center > App registrations > Certificates & secrets)."
        )

    def forget(self) -> None:
        if self._app is not None:
            self._app.remove_tokens_for_client()

    def _acquire(self) -> dict:
        try:
            return self._client().acquire_token_for_client(scopes=[self._settings.resource_scope])
        except ValueError as error:
            # MSAL raises ValueError when the authority's OpenID configuration is missing (unknown tenant).
            raise ErpRefused(
                f"Microsoft Entra ID does not know the authority {self._settings.authority} ({error}). "
                "Check HANDOFF_DATAVERSE__TENANT_ID and __AUTHORITY_HOST."
            ) from error
        except OSError as error:  # requests' ConnectionError and timeouts are OSErrors
            raise ErpUnavailable(f"Microsoft Entra ID is unreachable at {self._settings.authority_host} ({error}).") from error

    def _client(self) -> msal.ConfidentialClientApplication:
        with self._init_lock:
            if self._app is None:
                host = urlparse(self._settings.authority_host).hostname
                self._app = msal.ConfidentialClientApplication(
                    self._settings.client_id,
                    authority=self._settings.authority,
                    client_credential=self._settings.client_secret.get_secret_value(),
                    # Instance discovery asks login.microsoftonline.com whether the host is a Microsoft
                    # cloud; a host we were told to trust (a private or local authority) skips it.
                    instance_discovery=host in WELL_KNOWN_AUTHORITY_HOSTS,
                    http_client=_PinnedVerifySession(self._verify) if isinstance(self._verify, str) else None,
                )
            return self._app


class _PinnedVerifySession(requests.Session):
    """A requests session whose CA bundle the environment cannot override.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace a session's `verify` on every request
    (psf/requests#3829), which would silently drop the bundle Handoff was configured with.
    """

    def __init__(self, ca_bundle: str) -> None:
        super().__init__()
        self.verify = ca_bundle

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self.verify if verify is None or verify is True else verify
        return settings
