"""Dataverse webhooks: the key is checked first, then the RemoteExecutionContext becomes an event or a clear 4xx."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from handoff.bot.core.errors import BadEvent, IgnoredEvent
from handoff.bot.core.models import RecordRef
from handoff.connectors.dataverse import DataverseSettings, parse_webhook

FIXTURE = Path(__file__).parent.parent / "fixtures" / "dataverse" / "webhook_update_purchaseorder.json"
RECEIVED = datetime(2024, 6, 14, 11, 20, tzinfo=timezone.utc)
KEY = "0f8fad5b-d9cb-469f-a165-70867728950e"


def settings_for(webhook_auth: str) -> DataverseSettings:
    return DataverseSettings(url="https://contoso.crm.dynamics.com", tenant_id="t", client_id="c", client_secret="s",
                             webhook_key=KEY, webhook_auth=webhook_auth)


@pytest.fixture(params=["webhook_key", "http_header"])
def auth(request) -> tuple[DataverseSettings, dict, dict]:
    """Settings and the (query, headers) a correctly registered step sends, for both Dataverse key options."""
    settings = settings_for(request.param)
    return (settings, {"code": KEY}, {}) if request.param == "webhook_key" else (settings, {}, {"X-Handoff-Key": KEY})


def body(**changes) -> bytes:
    context = json.loads(FIXTURE.read_bytes())
    for key, value in changes.items():
        if value is None:
            context.pop(key, None)
        else:
            context[key] = value
    return json.dumps(context).encode()


def test_the_shared_fixture_becomes_an_event_about_the_record(auth):
    settings, query, headers = auth

    event = parse_webhook(FIXTURE.read_bytes(), query, headers, settings, RECEIVED)

    assert event.ref == RecordRef(source="dataverse", model="purchaseorder", record_id="0c5d3e2a-1b4f-ef11-bfe3-000d3a6a1234")
    assert event.dedup_key == ("dataverse:purchaseorder:0c5d3e2a-1b4f-ef11-bfe3-000d3a6a1234"
                               ":OperationId:5b2e8c1d-4f3a-ef11-bfe3-000d3a6a9999")
    assert event.received_at == RECEIVED
    hint = event.hint
    assert (hint["statuscode"], hint["totalamount"], hint["name"]) == (100000001, "12500.00", "PO-000123 Acme Supplies")
    assert hint["modifiedby"] == {"id": "75c2dd85-e89e-e711-8122-000d3aa2331c", "logical_name": "systemuser", "name": None}
    assert hint["formatted"] == {"statuscode": "Pending Approval", "totalamount": "€12,500.00"}
    assert (hint["message"], hint["row_version"], hint["size_exceeded"]) == ("Update", "4815162", False)


@pytest.mark.parametrize("query, headers", [({}, {}), ({"code": "guess"}, {"X-Handoff-Key": "guess"})])
def test_a_wrong_or_missing_key_is_refused_before_the_body_is_read(auth, query, headers):
    settings, _, _ = auth

    with pytest.raises(BadEvent, match="Wrong or missing Dataverse webhook key") as refused:
        parse_webhook(b"not even json", query, headers, settings, RECEIVED)

    assert refused.value.status == 401


def test_the_header_option_ignores_a_key_in_the_query():
    with pytest.raises(BadEvent) as refused:
        parse_webhook(FIXTURE.read_bytes(), {"code": KEY}, {}, settings_for("http_header"), RECEIVED)

    assert refused.value.status == 401 and "`x-handoff-key` header (HttpHeader)" in refused.value.reason


EXPECTED = "expected the RemoteExecutionContext a webhook step posts."


@pytest.mark.parametrize("payload, status, reason", [
    (b"{not json", 400, f"Dataverse webhook body is not a JSON object; {EXPECTED}"),
    (b"[1, 2]", 400, f"Dataverse webhook body is not a JSON object; {EXPECTED}"),
    (body(PrimaryEntityId=None), 422, f"Dataverse webhook has no PrimaryEntityId; {EXPECTED}"),
    (body(PrimaryEntityName=""), 422, f"Dataverse webhook has no PrimaryEntityName; {EXPECTED}"),
    (body(PrimaryEntityId="PO-000123"), 422, "Dataverse webhook PrimaryEntityId 'PO-000123' is not a GUID."),
])
def test_a_malformed_context_gets_a_4xx_that_says_what_is_wrong(auth, payload, status, reason):
    settings, query, headers = auth

    with pytest.raises(BadEvent) as rejected:
        parse_webhook(payload, query, headers, settings, RECEIVED)

    assert (rejected.value.status, rejected.value.reason) == (status, reason)


def test_a_table_nobody_mapped_is_ignored(auth):
    settings, query, headers = auth

    with pytest.raises(IgnoredEvent, match="table 'contact' is not mapped"):
        parse_webhook(body(PrimaryEntityName="contact"), query, headers, settings, RECEIVED)


def test_dataverse_retrying_the_same_delivery_dedups_and_a_new_change_does_not(auth):
    settings, query, headers = auth
    delivery = body(CorrelationId="9a1f4c2e-7b3d-4e55-8a10-3c2b1d0e9f88")
    # A second update set off by the same user action shares the CorrelationId but is its own operation.
    next_change = body(CorrelationId="9a1f4c2e-7b3d-4e55-8a10-3c2b1d0e9f88", OperationId="6c3f9d2e-5a4b-ef11-bfe3-000d3a6a0000")

    first = parse_webhook(delivery, query, headers, settings, RECEIVED)
    retried = parse_webhook(delivery, query, headers, settings, RECEIVED)
    other = parse_webhook(next_change, query, headers, settings, RECEIVED)

    assert first.dedup_key == retried.dedup_key
    assert other.dedup_key != first.dedup_key


def test_a_synchronous_step_without_an_operation_dedups_on_its_request(auth):
    settings, query, headers = auth
    empty = "00000000-0000-0000-0000-000000000000"

    one = parse_webhook(body(OperationId=empty, RequestId="a1b2c3d4-0000-4000-8000-000000000001"), query, headers, settings, RECEIVED)
    two = parse_webhook(body(OperationId=empty, RequestId="a1b2c3d4-0000-4000-8000-000000000002"), query, headers, settings, RECEIVED)

    assert one.dedup_key.endswith(":RequestId:a1b2c3d4-0000-4000-8000-000000000001")
    assert one.dedup_key != two.dedup_key


def test_an_oversize_payload_without_images_is_still_taken(auth):
    settings, query, headers = auth
    trimmed = body(InputParameters=None, PostEntityImages=None, PreEntityImages=None, ParentContext=None)

    event = parse_webhook(trimmed, query, {**headers, "x-ms-dynamics-msg-size-exceeded": ""}, settings, RECEIVED)

    assert event.ref.record_id == "0c5d3e2a-1b4f-ef11-bfe3-000d3a6a1234"
    assert event.hint == {"message": "Update", "size_exceeded": True, "formatted": {}}
