"""What the Teams tests share: a local Bot Connector, the bot served on loopback, activities shaped like Teams'."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path


from handoff.bot.channels.teams import TeamsSettings
from handoff.bot.core.models import (
    Action,
    ActionResult,
    ApprovalPacket,
    CardView,
    ChatIdentity,
    ErpRecord,
    Line,
    Outcome,
    Person,
    Platform,
    RecordRef,
    RequestStatus,
)
from handoff.bot.fakes.botconnector import FakeBotConnector

FIXTURES = Path(__file__).parents[2] / "fixtures" / "teams"
APP_ID = "4d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"
PASSWORD = "s3cret-client-secret"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DANA = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"  # AAD object id of the approver in the fixtures
CHANNEL = "19:finance-approvals@thread.tacv2"
TEAM = "19:finance-team@thread.tacv2"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def make_view(headline: str = "Waiting for Finance approver (stage 1 of 2)", version: int = 3, lines: int = 2) -> CardView:
    record = ErpRecord(
        ref=RecordRef(source="dataverse", model="purchaseorder", record_id="0c5d3e2a"),
        reference="PO-000123",
        state="pending",
        vendor="Fabrikam",
        amount=Decimal("12500.00"),
        currency="EUR",
        lines=tuple(Line(description=f"Item {n}", quantity=Decimal(1), unit_price=Decimal(10), subtotal=Decimal(10))
                    for n in range(lines)),
        url="https://contoso.crm.dynamics.com/main.aspx?id=0c5d3e2a",
    )
    packet = ApprovalPacket(request_id="req-1", version=version, record=record, fingerprint=record.fingerprint())
    return CardView(packet=packet, stage=0, stage_count=2, role="finance_approver", status=RequestStatus.OPEN, headline=headline)


class MemoryDirectory:
    """ConversationDirectory kept in a dict."""

    def __init__(self) -> None:
        self.references: dict[tuple[str, str], dict] = {}

    async def save_conversation(self, platform: Platform, key: str, reference: dict) -> None:
        self.references[(platform, key)] = reference

    async def find_conversation(self, platform: Platform, key: str) -> dict | None:
        return self.references.get((platform, key))


class StubApprovals:
    """Approvals that record each action and answer with a preset outcome; the view changes once something is recorded."""

    def __init__(self) -> None:
        self.actions: list[Action] = []
        self.outcome = Outcome.RECORDED
        self.message = "Recorded."
        self.view_after = make_view(headline="Approved by Dana Approver (stage 1). Dataverse updated.")

    async def act(self, action: Action) -> ActionResult:
        self.actions.append(action)
        return ActionResult(outcome=self.outcome, message=self.message)

    async def view(self, request_id: str) -> CardView | None:
        if request_id != "req-1":
            return None
        return self.view_after if self.actions and self.outcome is not Outcome.OWN_REQUEST else make_view()

    def person_for(self, identity: ChatIdentity) -> Person | None:
        if identity.user_id == DANA:
            return Person(key="dana", name="Dana Approver", teams=DANA)
        return None


def settings_for(fake: FakeBotConnector, **overrides) -> TeamsSettings:
    fields = {"app_id": APP_ID, "app_password": PASSWORD, "login_url": fake.url, "openid_metadata_url": fake.openid_metadata_url}
    return TeamsSettings(**{**fields, **overrides})


def from_connector(activity: dict, fake: FakeBotConnector) -> dict:
    """A fixture activity as this connector would send it: its own serviceUrl, and Dana's MRI."""
    activity = copy.deepcopy(activity)
    activity["serviceUrl"] = fake.service_url
    if activity.get("from", {}).get("aadObjectId") == DANA:
        activity["from"]["id"] = fake.installed_for(DANA)
    return activity


def personal_install(fake: FakeBotConnector) -> dict:
    return from_connector(fixture("conversation_update_install.json"), fake)


def channel_install(fake: FakeBotConnector) -> dict:
    """The bot added to a team: conversationUpdate in the General channel with the team in channelData."""
    activity = personal_install(fake)
    activity["conversation"] = {"conversationType": "channel", "tenantId": TENANT, "isGroup": True, "id": CHANNEL}
    activity["channelData"] = {"tenant": {"id": TENANT}, "team": {"id": TEAM, "name": "Finance"},
                               "channel": {"id": CHANNEL}, "eventType": "teamMemberAdded"}
    return activity


def card_invoke(fake: FakeBotConnector, verb: str, data: dict) -> dict:
    activity = from_connector(fixture("invoke_adaptivecard_action.json"), fake)
    activity["value"]["action"].update(verb=verb, data=data)
    return activity
