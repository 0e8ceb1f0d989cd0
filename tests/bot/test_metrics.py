"""/metrics over a running stack, read back with Prometheus' own text parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from handoff.bot.fakes.waiting import wait_until
from handoff.state import outbox

PROCUREMENT = "C0PROCURE"


async def scrape(stack) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label pairs: value}}, as a Prometheus server would store the scrape."""
    async with stack.http.get(f"{stack.handoff_url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await response.text()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def test_metrics_count_what_happened(stack):
    stack.odoo.fail_next(1, status=503)  # the first ERP read fails; enrichment retries
    await stack.send_order("P00045")
    await stack.send_order("P00043")
    await stack.click("dana", await stack.card(PROCUREMENT, "P00045"), "handoff.approve")
    await wait_until(lambda: stack.store.find_requests("P00045")[0].status.value == "approved", what="the approval")
    await stack.card(PROCUREMENT, "P00043")  # Slack allows one post per second per channel: this one waited
    await stack.settled()
    with stack.store.transaction() as conn:
        outbox.bury(conn, outbox.items(conn, "done")[0].id, "gave up")
    m = await scrape(stack)
    assert m["handoff_events_received_total"] == {(("source", "odoo"),): 2.0}
    assert m["handoff_cards_posted_total"] == {(("platform", "slack"),): 2.0}
    assert m["handoff_decisions_total"] == {(("outcome", "approve"),): 1.0}
    stage = (("role", "procurement_manager"), ("stage", "1"))
    assert m["handoff_approval_duration_seconds_count"] == {stage: 1.0}
    assert m["handoff_approval_duration_seconds_bucket"][(("le", "+Inf"),) + stage] == 1.0
    assert m["handoff_requests_open"] == {(): 1.0} and m["handoff_requests_stalled"] == {(): 0.0}
    assert m["handoff_outbox_dead_letters"] == {(): 1.0}
    assert m["handoff_outbox_items"][(("status", "dead"),)] == 1.0
    fetch = (("operation", "fetch_record"), ("source", "odoo"))
    assert m["handoff_erp_call_duration_seconds_count"][fetch] >= 3, "two enrichments, one retry, the click's re-read"
    assert m["handoff_erp_call_duration_seconds_count"][(("operation", "write_decision"), ("source", "odoo"))] == 1.0
    assert m["handoff_erp_call_errors_total"] == {(("error", "ErpUnavailable"),) + fetch: 1.0}


async def test_metrics_of_an_empty_store_still_parse(stack):
    m = await scrape(stack)
    assert m["handoff_requests_open"] == {(): 0.0}
    assert "handoff_events_received_total" not in m
