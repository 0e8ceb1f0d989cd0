"""Fakes for the admin commands: Dataverse behind a fake Entra served over loopback TLS."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import pytest

from handoff.bot.core.retry import Backoff
from handoff.bot.fakes.dataverse import FakeDataverse
from handoff.bot.fakes.entra import FakeEntra
from handoff.bot.fakes.loopback_tls import LoopbackTls, loopback_tls
from handoff.connectors.dataverse_auth import MsalTokenProvider
from handoff.connectors.dataverse_settings import DataverseSettings
from handoff.connectors.dataverse_webapi import WebApi

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "5b0c9a3e-7f44-4c1e-9d7a-2f6e8b1c0d11"
CLIENT_SECRET = "entra-client-secret-value"
WEBHOOK_KEY = "dataverse-hook-key"


@dataclass
class DataverseEnv:
    fake: FakeDataverse
    settings: DataverseSettings
    tls: LoopbackTls
    session: aiohttp.ClientSession

    def api(self) -> WebApi:
        tokens = MsalTokenProvider(self.settings, verify=self.tls.ca_file)

        async def no_sleep(seconds: float) -> None:
            return None

        return WebApi(self.settings.url, self.session, tokens, Backoff(attempts=2, base_delay=0.01), no_sleep)


@pytest.fixture
async def dataverse(aiohttp_server, tmp_path, clock):
    tls = loopback_tls(tmp_path / "tls")
    entra = FakeEntra(clock, tenant=TENANT)
    entra.register(CLIENT_ID, CLIENT_SECRET)
    # MSAL accepts only https authorities, so the token endpoint is served with a throwaway certificate.
    entra_server = await aiohttp_server(entra.app, ssl=tls.server_context())
    fake = FakeDataverse(entra, clock)
    server = await aiohttp_server(fake.app)
    settings = DataverseSettings(url=str(server.make_url("")).rstrip("/"), tenant_id=TENANT, client_id=CLIENT_ID,
                                 client_secret=CLIENT_SECRET, authority_host=str(entra_server.make_url("")).rstrip("/"),
                                 webhook_key=WEBHOOK_KEY)
    async with aiohttp.ClientSession() as session:
        yield DataverseEnv(fake, settings, tls, session)
