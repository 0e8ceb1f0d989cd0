"""Every endpoint fuzzed over real HTTP: malformed JSON, wrong types, huge strings, odd unicode, missing fields.

Always a 4xx or a 2xx (a logged ignore), never a 500 and never a dead worker; a valid event sent afterwards still
becomes a card. Hypothesis runs in a thread with blocking HTTP, so the server keeps running on the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections import Counter
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handoff.bot.fakes.stack import local_stack
from handoff.bot.fakes.stack_dataverse import WEBHOOK_KEY as DATAVERSE_KEY

EXAMPLES = 200
ODD = ["\x00", "\u202e", "\ufeff", "\U0001f4a9", "e\u0301", "\u0000\u0000", "'; DROP TABLE inbox; --", "<!channel>", "%s%n", "\\"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
    st.text(max_size=40), st.sampled_from(ODD),
    st.integers(min_value=1_000, max_value=200_000).map(lambda n: "x" * n),  # huge strings
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)

odoo_shaped = st.fixed_dictionaries(
    {},
    optional={
        "_model": st.one_of(st.sampled_from(["purchase.order", "res.partner", ""]), json_values),
        "_id": st.one_of(st.integers(min_value=-5, max_value=10**12), json_values),
        "write_date": st.one_of(st.just("2024-06-14 09:30:00"), json_values),
        "state": json_values, "amount_total": json_values, "partner_id": json_values, "name": json_values,
    },
)


def encoded(value) -> bytes:
    return json.dumps(value).encode()


raw_bytes = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),  # lone surrogates: invalid UTF-8
    st.sampled_from([b"", b"{", b"[]", b"null", b'{"_model":', b"\xff\xfe", b'{"_id": 1e999}', b"{" * 5000]),
)
odoo_bodies = st.one_of(odoo_shaped.map(encoded), json_values.map(encoded), raw_bytes)

slack_payloads = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["block_actions", "view_submission", "shortcut", "nonsense"])},
                          optional={"user": json_values, "actions": json_values, "view": json_values, "container": json_values,
                                    "trigger_id": json_values, "team": json_values}),
    json_values,
)
slack_events = st.fixed_dictionaries(
    {"type": st.sampled_from(["event_callback", "url_verification", "app_rate_limited"])},
    optional={"event": json_values, "event_id": json_values, "challenge": json_values, "team_id": json_values},
)
slack_bodies = st.one_of(
    slack_payloads.map(lambda p: ("application/x-www-form-urlencoded", urlencode({"payload": json.dumps(p)}).encode())),
    st.text(max_size=300).map(lambda t: ("application/x-www-form-urlencoded", urlencode({"payload": t}).encode())),
    st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=6).map(
        lambda d: ("application/x-www-form-urlencoded", urlencode({"command": "/handoff", **d}).encode())),
    slack_events.map(lambda e: ("application/json", encoded(e))),
    raw_bytes.map(lambda b: ("application/json", b)),
)


def post(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> int:
    request = urllib.request.Request(url, data=body if method == "POST" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def check(statuses: dict[str, Counter], failures: list, caplog) -> None:
    print("\nfuzz cases per endpoint:", {endpoint: sum(c.values()) for endpoint, c in statuses.items()},
          "statuses:", {endpoint: dict(c) for endpoint, c in statuses.items()})
    assert not failures, failures[:10]
    assert all(sum(c.values()) >= EXAMPLES for c in statuses.values())
    assert not [r for r in caplog.records if r.getMessage() == "worker.error"], "a fuzzed input broke the worker"


FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])


async def test_every_endpoint_survives_fuzzing_and_still_takes_a_valid_event(stack, caplog):
    caplog.set_level(logging.WARNING)
    statuses: dict[str, Counter] = {}
    failures: list = []
    sent_last: list = [None]

    def record(endpoint: str, status: int) -> None:
        statuses.setdefault(endpoint, Counter())[status] += 1
        if status >= 500:
            failures.append((endpoint, status, sent_last[0]))

    @FUZZ
    @given(body=odoo_bodies)
    def fuzz_odoo(body: bytes) -> None:
        sent_last[0] = body[:200]
        record("/webhooks/odoo", post(stack.webhook_url(), body, {"Content-Type": "application/json"}))

    @FUZZ
    @given(sent=slack_bodies)
    def fuzz_slack(sent: tuple[str, bytes]) -> None:
        content_type, body = sent
        sent_last[0] = sent
        record("/slack/events", post(f"{stack.handoff_url}/slack/events", body, {"Content-Type": content_type, **stack.signer.sign(body)}))

    @FUZZ
    @given(query=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=4))
    def fuzz_healthz(query: dict[str, str]) -> None:
        record("/healthz", post(f"{stack.handoff_url}/healthz?{urlencode(query)}", b"", {}, method="GET"))

    for run in (fuzz_odoo, fuzz_slack, fuzz_healthz):
        await asyncio.to_thread(run)

    check(statuses, failures, caplog)

    status, _ = await stack.send_order("P00042")
    assert status == 200
    await stack.card("C0PROCURE", "P00042", timeout=30)


teams_activities = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "invoke", "conversationUpdate", "installationUpdate", "messageReaction", "typing"])},
    optional={"text": json_values, "value": json_values, "name": st.one_of(st.just("adaptiveCard/action"), json_values),
              "from": json_values, "conversation": json_values, "channelData": json_values, "serviceUrl": json_values,
              "membersAdded": json_values, "id": json_values, "channelId": st.one_of(st.just("msteams"), json_values)},
)
dataverse_contexts = st.fixed_dictionaries(
    {},
    optional={"MessageName": st.one_of(st.sampled_from(["Update", "Create", "Delete"]), json_values),
              "PrimaryEntityName": st.one_of(st.just("purchaseorder"), json_values),
              "PrimaryEntityId": st.one_of(st.uuids().map(str), json_values), "InputParameters": json_values,
              "PostEntityImages": json_values, "OperationCreatedOn": json_values, "CorrelationId": json_values},
)


def is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# The Teams fuzz sends UTF-8 bodies; bytes that are not UTF-8 at all have their own test below.
utf8_bytes = raw_bytes.filter(is_utf8)


@pytest.fixture
async def teams_dataverse(tmp_path):
    async with local_stack(tmp_path / "handoff.db", source="dataverse", chat="teams") as running:
        yield running


async def test_dataverse_and_teams_endpoints_survive_fuzzing_with_valid_credentials(teams_dataverse, caplog):
    stack = teams_dataverse
    caplog.set_level(logging.WARNING)
    statuses: dict[str, Counter] = {}
    failures: list = []
    teams = stack.teams
    token = teams.connector.issue_token(service_url=teams.service_url)

    def record(endpoint: str, status: int, body: bytes) -> None:
        statuses.setdefault(endpoint, Counter())[status] += 1
        if status >= 500:
            failures.append((endpoint, status, body[:300]))

    @FUZZ
    @given(body=st.one_of(dataverse_contexts.map(encoded), json_values.map(encoded), raw_bytes))
    def fuzz_dataverse(body: bytes) -> None:
        headers = {"Content-Type": "application/json", "x-ms-dynamics-entity-name": "purchaseorder", "x-ms-dynamics-request-name": "Update"}
        record("/webhooks/dataverse", post(f"{stack.dataverse.endpoint}?code={DATAVERSE_KEY}", body, headers), body)

    @FUZZ
    @given(body=st.one_of(teams_activities.map(encoded), json_values.map(encoded), utf8_bytes))
    def fuzz_teams(body: bytes) -> None:
        record("/api/messages", post(teams.endpoint, body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}), body)

    for run in (fuzz_dataverse, fuzz_teams):
        await asyncio.to_thread(run)
    check(statuses, failures, caplog)

    status, _ = await stack.send_order("PO-000123")
    assert status == 200
    await teams.card("procurement", "PO-000123", timeout=30)


async def test_a_teams_body_that_is_not_utf8_is_a_400(teams_dataverse):
    teams = teams_dataverse.teams
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {teams.connector.issue_token(service_url=teams.service_url)}"}
    async with teams_dataverse.http.post(teams.endpoint, data=b"\xff\xfe", headers=headers) as response:
        assert response.status == 400
