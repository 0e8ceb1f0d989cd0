"""The Dataverse side of the local stack: Web API and Entra fakes (Entra over loopback TLS), demo orders, webhooks, edits."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from handoff.connectors.dataverse import DataverseSettings

from .dataverse import FakeDataverse
from .entra import FakeEntra
from .loopback_tls import loopback_tls

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "5b0c9a3e-7f44-4c1e-9d7a-2f6e8b1c0d11"
CLIENT_SECRET = "local-entra-client-secret"
WEBHOOK_KEY = "local-dataverse-webhook-key"
ENTITY = "purchaseorder"
MARC = ("Marc Buyer", "marc@example.com")
PRIYA = ("Priya Patel", "priya@example.com")


def demo_orders(fake: FakeDataverse) -> dict[str, str]:
    """The demo story's orders, as Odoo's demo seed has them: a large one Marc raised, one that drifts, a small one."""
    return {
        "PO-000123": fake.add_purchase_order("PO-000123", "Acme Supplies", "12500.00", requester=MARC, business_unit="EU Procurement",
                                             lines=[("Steel bolts M8 (box of 100)", 500, "12.00"), ("Hydraulic fittings kit", 100, "45.00"),
                                                    ("On-site installation", 1, "2000.00")]),
        "PO-000124": fake.add_purchase_order("PO-000124", "Northwind Traders", "3240.00", requester=PRIYA, attachments=2,
                                             lines=[("Laptop docking station", 40, "54.00"), ("27-inch monitor", 12, "90.00")]),
        "PO-000125": fake.add_purchase_order("PO-000125", "Acme Supplies", "1499.00", requester=PRIYA,
                                             lines=[("Cordless drill 18V", 10, "89.90"), ("Drill bit set", 5, "120.00")]),
    }


@dataclass
class DataverseDriver:
    """What an org would do to Handoff: post its webhook, and edit records behind Handoff's back."""

    fake: FakeDataverse
    entra: FakeEntra
    endpoint: str
    http: aiohttp.ClientSession
    orders: dict[str, str]
    edits: dict[str, dict] = field(default_factory=dict)  # record id -> columns someone changes as Handoff writes
    sent: dict[str, bytes] = field(default_factory=dict)  # reference -> the last webhook body posted for it

    async def send_order(self, reference: str, key: str = WEBHOOK_KEY, *, redeliver: bool = False) -> tuple[int, dict]:
        """POST the RemoteExecutionContext an async Update step posts, the WebhookKey in `?code=` (protocols.md §3).

        `redeliver` posts the last body again, same OperationId, as Dataverse's one retry after a 502/503/504 does.
        """
        if not redeliver or reference not in self.sent:
            self.sent[reference] = self.fake.webhook_body(ENTITY, self.orders[reference])
        body = self.sent[reference]
        headers = {"Content-Type": "application/json", "x-ms-dynamics-entity-name": ENTITY, "x-ms-dynamics-request-name": "Update"}
        async with self.http.post(self.endpoint, params={"code": key}, data=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    def change(self, reference: str, **columns: object) -> None:
        """Someone edits the record in Dataverse (no webhook): its ETag moves on."""
        self.fake.update(ENTITY, self.orders[reference], **columns)

    def edit_before_next_write(self, reference: str, **columns: object) -> None:
        """Make someone edit the record just as Handoff's next PATCH of it arrives, so that PATCH meets a 412."""
        self.edits[self.orders[reference]] = columns

    def row(self, reference: str) -> dict:
        return self.fake.row(ENTITY, self.orders[reference])

    def patches(self, reference: str) -> list[dict[str, str]]:
        """The headers of each PATCH Handoff sent to the record."""
        record_id = self.orders[reference]
        return [headers for method, path, headers in self.fake.requests if method == "PATCH" and record_id in path]


def _edits_on_write(fake: FakeDataverse, edits: dict[str, dict]):
    @web.middleware
    async def race(request: web.Request, handler) -> web.StreamResponse:
        if request.method == "PATCH":
            for record_id in [r for r in edits if r in request.path]:
                fake.update(ENTITY, record_id, **edits.pop(record_id))
        return await handler(request)

    return race


@asynccontextmanager
async def dataverse_fakes(serve, clock) -> AsyncIterator[tuple[FakeDataverse, FakeEntra, DataverseSettings, dict[str, dict]]]:
    """Entra (HTTPS: MSAL refuses anything else) and Dataverse on loopback, Handoff's settings for them, pending edits."""
    entra = FakeEntra(clock, tenant=TENANT)
    entra.register(CLIENT_ID, CLIENT_SECRET)
    fake = FakeDataverse(entra, clock)
    edits: dict[str, dict] = {}
    fake.app.middlewares.append(_edits_on_write(fake, edits))
    runners = []
    with tempfile.TemporaryDirectory(prefix="handoff-tls-") as folder:
        tls = loopback_tls(Path(folder))
        try:
            entra_runner, entra_url = await serve(entra.app, ssl_context=tls.server_context())
            runners.append(entra_runner)
            dataverse_runner, dataverse_url = await serve(fake.app)
            runners.append(dataverse_runner)
            settings = DataverseSettings(url=dataverse_url, tenant_id=TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                         authority_host=entra_url, webhook_key=WEBHOOK_KEY, ca_bundle=tls.ca_file)
            yield fake, entra, settings, edits
        finally:
            for runner in runners:
                await runner.cleanup()
