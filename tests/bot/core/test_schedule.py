"""Reminders, escalation and stall alerts end to end: Odoo webhook → Slack card → time passes → Slack hears about it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from handoff.bot.app import CORE
from handoff.bot.core.events import Event
from handoff.bot.core.ports import SystemClock
from handoff.bot.core.schedule import Scheduler
from handoff.bot.fakes.slack import SlackSigner
from handoff.bot.fakes.stack import SAMPLE_ROUTING, SIGNING_SECRET, local_stack
from handoff.bot.fakes.waiting import wait_until
from handoff.bot.routing_file import load_routing
from handoff.state import outbox
from handoff.state.schedule_store import ScheduleStore

PROCUREMENT, OPS = "C0PROCURE", "C0OPS"
MONDAY_9AM = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)


class StepClock:
    """The scheduler's clock, moved by the test to exact moments."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


async def move_to(stack, clock: StepClock, at: datetime, pace_s: int = 20) -> None:
    """Set the time, then let `pace_s` seconds pass one at a time: the outbox sends one message per second per channel."""
    clock.at = at
    for _ in range(pace_s):
        stack.app[CORE].wake()
        await stack.settled()
        clock.at += timedelta(seconds=1)


def real_time_signer(stack) -> None:
    # Bolt checks Slack signatures against the real time, which this test's clock has long left behind.
    stack.signer = SlackSigner(SIGNING_SECRET, SystemClock(), stack.slack.workspace)


def replies(stack, channel: str, ts: str, text: str) -> list[str]:
    return [m.text for m in stack.slack.thread_replies(channel, ts) if text in m.text]


def ops_alerts(stack, reference: str):
    return [m for m in stack.slack.messages.get(OPS, []) if m.thread_ts is None and reference in m.text]


def dm_reminders(stack, person: str) -> list[str]:
    channel = stack.slack.dms.get(stack.slack_id(person))
    return [m.text for m in stack.slack.messages.get(channel, []) if m.text.startswith("Reminder")] if channel else []


@pytest.fixture
def clock() -> StepClock:
    return StepClock(MONDAY_9AM)


async def test_reminder_escalation_and_one_stall_alert_updated_in_place_then_resolved(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as stack:
        real_time_signer(stack)
        await stack.send_order("P00045")  # 1,399 EUR: po-standard, #procurement, 8 h SLA, escalates to finance
        card = await stack.card(PROCUREMENT, "P00045")

        await move_to(stack, clock, datetime(2026, 11, 23, 12, 59, tzinfo=timezone.utc))
        assert replies(stack, PROCUREMENT, card.ts, "Reminder") == []

        await move_to(stack, clock, datetime(2026, 11, 23, 13, 0, tzinfo=timezone.utc))  # half the SLA
        reminder = await wait_until(lambda: replies(stack, PROCUREMENT, card.ts, "Reminder: P00045"), what="the 50% reminder")
        assert "4 business hours" in reminder[0] and "SLA 8 h" in reminder[0]
        await move_to(stack, clock, datetime(2026, 11, 23, 16, 30, tzinfo=timezone.utc))
        assert len(replies(stack, PROCUREMENT, card.ts, "Reminder")) == 1, "never twice for one point"
        assert ops_alerts(stack, "P00045") == []

        # 8 business hours end at 17:00; the stall is acted on when the office opens on Tuesday.
        await move_to(stack, clock, datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
        alert = (await wait_until(lambda: ops_alerts(stack, "P00045"), what="the stall alert"))[0]
        assert "Stalled: P00045" in alert.text and "8 business hours" in alert.text
        assert "Procurement manager in #procurement; held by Dana Approver, Erik Lindqvist" in alert.text
        assert "Escalated to Finance director" in alert.text
        assert "Next: approve, ping or reassign" in alert.text and "/handoff status P00045" in alert.text
        fiona_card = await stack.card("fiona", "P00045")
        assert "escalated to Finance director after its 8 h SLA" in str(fiona_card.blocks)
        channel_card = stack.slack.message(PROCUREMENT, card.ts)
        assert "escalated to Finance director" in str(channel_card.blocks), "the channel card shows the escalation"
        await wait_until(lambda: replies(stack, PROCUREMENT, card.ts, "What changed for P00045"), what="the what-changed reply")
        assert len(replies(stack, PROCUREMENT, card.ts, "Reminder")) == 2

        await move_to(stack, clock, datetime(2026, 11, 24, 11, 0, tzinfo=timezone.utc))
        aged = await wait_until(lambda: "10 business hours" in stack.slack.message(OPS, alert.ts).text and stack.slack.message(OPS, alert.ts),
                                what="the alert aged in place")
        assert aged.updates and len(ops_alerts(stack, "P00045")) == 1, "one alert per stall, edited, never reposted"

        await stack.click("fiona", fiona_card, "handoff.approve")  # the escalation role may decide
        resolved = await wait_until(lambda: "Resolved" in stack.slack.message(OPS, alert.ts).text and stack.slack.message(OPS, alert.ts),
                                    what="the alert resolved")
        assert "P00045 moved on (approved)" in resolved.text
        await wait_until(lambda: stack.odoo.db.records["purchase.order"][stack.orders["P00045"]]["state"] == "purchase",
                         what="the approval in Odoo")
        request = stack.store.find_requests("P00045")[0]
        events = [e.event for e in stack.store.narrative(request.id)]
        assert events.count(Event.REQUEST_STALLED) == 1 and events.count(Event.STAGE_ESCALATED) == 1


async def test_a_person_outside_the_escalation_role_still_cannot_decide(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as stack:
        real_time_signer(stack)
        await stack.send_order("P00045")
        card = await stack.card(PROCUREMENT, "P00045")
        await stack.click("fiona", card, "handoff.approve")
        refused = await wait_until(lambda: stack.whispers_to("fiona"), what="Fiona's refusal before escalation")
        assert refused == ["Only Procurement manager can decide stage 1 of P00045."]
        await move_to(stack, clock, datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
        await stack.click("gus", card, "handoff.approve")
        told = await wait_until(lambda: stack.whispers_to("gus"), what="Gus's refusal")
        assert told == ["Only Procurement manager or Finance director can decide stage 1 of P00045."]


THURSDAY_9AM = datetime(2026, 11, 26, 9, tzinfo=timezone.utc)


def escalations(stack, reference: str) -> list[tuple[int, str, str]]:
    request = stack.store.find_requests(reference)[0]
    return [(e.body["level"], e.body["from"], e.body["to"]) for e in stack.store.narrative(request.id) if e.event == Event.STAGE_ESCALATED]


BOTH_STEPS = [(1, "procurement_manager", "finance_director"), (2, "finance_director", "chief_financial_officer")]


async def test_a_chain_of_two_escalates_once_per_further_sla_across_a_weekend_then_only_reminds(tmp_path, clock):
    """po-large stage 1: 8 business hours, then the finance director, 8 more, then the CFO; then reminders only."""
    clock.at = THURSDAY_9AM
    async with local_stack(tmp_path / "handoff.db", clock=clock) as stack:
        real_time_signer(stack)
        await stack.send_order("P00044")  # 48,000 USD
        card = await stack.card(PROCUREMENT, "P00044")
        await move_to(stack, clock, datetime(2026, 11, 27, 8, 59, tzinfo=timezone.utc))
        assert escalations(stack, "P00044") == [] and ops_alerts(stack, "P00044") == []
        await move_to(stack, clock, datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc))  # the SLA ended as Thursday closed
        fiona_card = await stack.card("fiona", "P00044")
        assert "escalated to Finance director after its 8 h SLA" in str(fiona_card.blocks)
        alert = (await wait_until(lambda: ops_alerts(stack, "P00044"), what="the stall alert"))[0]
        assert "Escalated to Finance director (1st escalation of 2; Chief financial officer follows if it waits another SLA)." in alert.text
        await stack.click("carla", card, "handoff.approve")
        refused = await wait_until(lambda: stack.whispers_to("carla"), what="Carla's refusal before her step")
        assert refused == ["Only Procurement manager or Finance director can decide stage 1 of P00044."]

        await move_to(stack, clock, datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc))
        await move_to(stack, clock, datetime(2026, 11, 30, 8, 59, tzinfo=timezone.utc))
        assert stack.slack.dms.get(stack.slack_id("carla")) is None, "no step at the weekend nor before Monday opens"
        await move_to(stack, clock, datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc))  # 16 business hours
        carla_card = await stack.card("carla", "P00044")
        second = "escalated to Chief financial officer (2nd escalation) after 2 × its 8 h SLA"
        assert second in str(carla_card.blocks)
        assert second in str(stack.slack.message(PROCUREMENT, card.ts).blocks), "the channel card shows the second step"
        updated = await wait_until(lambda: "2nd escalation" in stack.slack.message(OPS, alert.ts).text and stack.slack.message(OPS, alert.ts),
                                   what="the alert updated in place")
        assert "Escalated to Chief financial officer (2nd escalation, the last of its chain; the reminders go on)." in updated.text
        body = stack.signer.slash_command_body(stack.slack_id("erik"), "erik", PROCUREMENT, "procurement", "status P00044")
        _, answer = await stack.post_slack(body)
        assert "2nd escalation, the last of its chain" in answer and "They may decide it too: Fiona Finance, Carla Chief." in answer
        assert "Escalated stage 1 to Chief financial officer (2nd escalation, from Finance director)" in answer

        await move_to(stack, clock, datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc))  # a third SLA: the chain has ended
        await wait_until(lambda: replies(stack, PROCUREMENT, card.ts, "has waited 24 business hours"), what="the reminder after the chain")
        assert escalations(stack, "P00044") == BOTH_STEPS
        assert len(ops_alerts(stack, "P00044")) == 1
        carla_dm = stack.slack.messages[stack.slack.dms[stack.slack_id("carla")]]
        assert len([m for m in carla_dm if m.thread_ts is None]) == 1, "one card for the CFO"

        await stack.click("carla", carla_card, "handoff.approve")
        resolved = await wait_until(lambda: "Resolved" in stack.slack.message(OPS, alert.ts).text and stack.slack.message(OPS, alert.ts),
                                    what="the alert resolved by the CFO's approval")
        assert "P00044 moved on (now at stage 2, Finance director)" in resolved.text


async def test_the_second_escalation_step_survives_a_restart_and_the_first_is_not_repeated(tmp_path, clock):
    database, clock.at = tmp_path / "handoff.db", THURSDAY_9AM
    async with local_stack(database, clock=clock) as stack:
        await stack.send_order("P00044")
        await stack.card(PROCUREMENT, "P00044")
        await move_to(stack, clock, datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc))
        await stack.card("fiona", "P00044")

    # The fakes start empty again: whatever reaches them came from the new process.
    async with local_stack(database, clock=clock) as stack:
        await move_to(stack, clock, datetime(2026, 11, 27, 16, 59, tzinfo=timezone.utc))
        assert escalations(stack, "P00044") == BOTH_STEPS[:1]
        await move_to(stack, clock, datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc))
        await stack.card("carla", "P00044")
        assert escalations(stack, "P00044") == BOTH_STEPS
        assert stack.slack.dms.get(stack.slack_id("fiona")) is None, "the first step was not taken again"


async def test_an_escalation_never_reaches_the_requester_nor_lets_them_decide(tmp_path, clock):
    text = SAMPLE_ROUTING.read_text().replace('erp_login = "carla@example.com"', 'erp_login = "tom@example.com"', 1)
    (tmp_path / "routing.toml").write_text(text)  # Carla, the CFO, raised P00044 herself
    async with local_stack(tmp_path / "handoff.db", routing=load_routing(tmp_path / "routing.toml"), clock=clock) as stack:
        real_time_signer(stack)
        await stack.send_order("P00044")
        card = await stack.card(PROCUREMENT, "P00044")
        await move_to(stack, clock, datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc))  # Wednesday: 16 business hours
        await wait_until(lambda: len(escalations(stack, "P00044")) == 2, what="both steps")
        assert stack.slack.dms.get(stack.slack_id("carla")) is None
        await stack.click("carla", card, "handoff.approve")
        told = await wait_until(lambda: stack.whispers_to("carla"), what="Carla's refusal")
        assert told[0].startswith("You can't approve your own request.")


def dm_routing(tmp_path: Path):
    """po-standard by DM, with Erik in New York: his 9 am is 14:00 UTC."""
    text = SAMPLE_ROUTING.read_text()
    text = text.replace('deliver = "channel"\nchannel = "procurement"\nsla_hours = 8\n', 'deliver = "dm"\nsla_hours = 8\n', 1)
    text = text.replace('erp_login = "erik@example.com"\n', 'erp_login = "erik@example.com"\ntime_zone = "America/New_York"\n', 1)
    path = tmp_path / "routing.toml"
    path.write_text(text)
    return load_routing(path)


async def test_reminders_wait_for_the_approvers_morning_and_survive_a_restart(tmp_path, clock):
    routing, database = dm_routing(tmp_path), tmp_path / "handoff.db"
    async with local_stack(database, routing=routing, clock=clock) as stack:
        await stack.send_order("P00045")
        await stack.card("dana", "P00045")
        await stack.card("erik", "P00045")
        await move_to(stack, clock, datetime(2026, 11, 23, 13, 0, tzinfo=timezone.utc))
        await wait_until(lambda: dm_reminders(stack, "dana"), what="Dana's reminder")
        assert dm_reminders(stack, "erik") == [], "08:00 in New York: Erik's waits"

    # A restart in the middle of the SLA: the due times live in the database, not in the old process.
    async with local_stack(database, routing=routing, clock=clock) as stack:
        await move_to(stack, clock, datetime(2026, 11, 23, 13, 30, tzinfo=timezone.utc))
        assert dm_reminders(stack, "erik") == [] and dm_reminders(stack, "dana") == []
        await move_to(stack, clock, datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc))
        reminder = await wait_until(lambda: dm_reminders(stack, "erik"), what="Erik's reminder at 9 am New York time")
        assert len(reminder) == 1 and reminder[0].startswith("Reminder: P00045")
        await move_to(stack, clock, datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc))
        assert dm_reminders(stack, "dana") == [], "Dana was reminded before the restart, so not again"
        assert len(dm_reminders(stack, "erik")) == 1


async def test_weeks_open_keeps_reminding_once_per_sla_and_the_tick_uses_indexes(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as stack:
        await stack.send_order("P00045")
        card = await stack.card(PROCUREMENT, "P00045")
        for day in range(24, 31):  # a week and more of business days: one reminder per SLA (8 h = a day)
            if datetime(2026, 11, day).weekday() < 5:
                await move_to(stack, clock, datetime(2026, 11, day, 9, 0, tzinfo=timezone.utc))
        reminders = replies(stack, PROCUREMENT, card.ts, "Reminder: P00045")
        assert len(reminders) == 5 and "40 business hours" in reminders[-1]
        assert len(ops_alerts(stack, "P00045")) == 1

        assert ScheduleStore(stack.store).next_due() is not None
        if getattr(stack.store.conn, "dialect", "sqlite") == "sqlite":
            # SQLite's plan is stable to assert on; PostgreSQL's planner may scan a tiny test table instead.
            plan = stack.store.conn.execute(
                "EXPLAIN QUERY PLAN SELECT request_id FROM stages WHERE status = 'pending' AND due_at IS NOT NULL AND due_at <= ?",
                ("2026",),
            ).fetchall()
            assert "USING INDEX stages_due" in str(plan)


async def test_a_dead_lettered_card_gets_an_alert_with_the_retry_command_and_resolves_once_retried(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as stack:
        del stack.slack.messages[PROCUREMENT], stack.slack.channel_names[PROCUREMENT]  # the app was removed from the channel
        await stack.send_order("P00045")
        dead = await wait_until(lambda: [m for m in stack.slack.messages[OPS] if m.text.startswith("Dead letter #")],
                                what="the dead-letter alert")
        item_id = dead[0].text.split("#")[1].split(":")[0]
        assert "channel_not_found" in dead[0].text and f"handoff outbox retry {item_id}" in dead[0].text

        await move_to(stack, clock, datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
        stall = await wait_until(lambda: ops_alerts(stack, "Stalled: P00045"), what="the stall alert")
        assert "no Procurement manager has the card — routing failed or its post was set aside" in stall[0].text

        stack.slack.add_channel(PROCUREMENT, "procurement")
        with stack.store.transaction() as conn:
            assert outbox.revive(conn, int(item_id), clock.now())  # what `handoff outbox retry N` does
        await move_to(stack, clock, clock.now())
        await stack.card(PROCUREMENT, "P00045")
        retried = await wait_until(lambda: "Resolved" in stack.slack.message(OPS, dead[0].ts).text and stack.slack.message(OPS, dead[0].ts),
                                   what="the dead-letter alert resolved")
        assert f"dead letter #{item_id} was retried or dropped" in retried.text


async def test_the_daily_digest_ages_open_requests_once_per_working_day(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as stack:
        await stack.send_order("P00045")
        await stack.card(PROCUREMENT, "P00045")
        await move_to(stack, clock, datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc))
        for day in (24, 28, 29, 30):  # Tuesday, a weekend, Monday
            await move_to(stack, clock, datetime(2026, 11, day, 10, 0, tzinfo=timezone.utc))
        digests = [m.text for m in stack.slack.messages[OPS] if m.text.startswith("Daily exception aging")]
        assert len(digests) == 3, "Monday, Tuesday and the next Monday; none at the weekend, never twice a day"
        assert "• Handoff Demo EU · no exception: " in digests[-1] and "oldest waiting 7 days" in digests[-1]


async def test_after_days_of_downtime_one_catch_up_reminder_not_a_burst(tmp_path, clock):
    database = tmp_path / "handoff.db"
    async with local_stack(database, clock=clock) as stack:
        await stack.send_order("P00045")
        card = await stack.card(PROCUREMENT, "P00045")
    clock.at = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)  # Handoff was down from Monday to Friday
    async with local_stack(database, clock=clock) as stack:
        await move_to(stack, clock, clock.at)
        await wait_until(lambda: ops_alerts(stack, "Stalled: P00045"), what="the stall alert")
        reminders = [m.text for m in stack.slack.messages[PROCUREMENT] if m.thread_ts == card.ts and "Reminder: P00045" in m.text]
        assert len(reminders) == 1 and "33 business hours" in reminders[0]


async def test_the_stall_alert_keeps_its_command_a_real_code_span_while_the_vendor_name_stays_inert(tmp_path, clock):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as stack:
        partner = stack.odoo.db.records["purchase.order"][stack.orders["P00045"]]["partner_id"]
        stack.odoo.set_field("res.partner", partner, name="`Acme` <!channel> *Supplies*")
        await stack.send_order("P00045")
        await stack.card(PROCUREMENT, "P00045")

        await move_to(stack, clock, datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))

        alert = (await wait_until(lambda: ops_alerts(stack, "Stalled: P00045"), what="the stall alert"))[0]
        assert "`/handoff status P00045`" in alert.text, "our command is a real code span Slack renders as code"
        assert "(\u02cbAcme\u02cb &lt;!channel&gt; \u2217Supplies\u2217, " in alert.text, "the ERP's name is shown as typed"
        assert "<!channel>" not in alert.text
        card = await stack.card(PROCUREMENT, "P00045")
        [reminder] = replies(stack, PROCUREMENT, card.ts, "Reminder: P00045")
        assert "(\u02cbAcme\u02cb &lt;!channel&gt; \u2217Supplies\u2217, " in reminder, "no code span from the ERP's backticks"


async def test_a_stage_whose_step_fails_does_not_hold_back_the_other_reminders_of_its_tick(tmp_path, clock, monkeypatch):
    async with local_stack(tmp_path / "handoff.db", clock=clock) as stack:
        for reference in ("P00045", "P00043"):
            await stack.send_order(reference)
        await move_to(stack, clock, MONDAY_9AM, pace_s=3)  # one card a second in #procurement
        for reference in ("P00045", "P00043"):
            await stack.card(PROCUREMENT, reference)
        failing = stack.store.find_requests("P00043")[0].id
        fire = Scheduler._fire_batch

        def fire_or_fail(self, effects, rows, now):
            if any(row.request_id == failing for row in rows):
                raise RuntimeError("a bug in this stage's step")
            return fire(self, effects, rows, now)

        monkeypatch.setattr(Scheduler, "_fire_batch", fire_or_fail)
        clock.at = datetime(2026, 11, 23, 13, 0, tzinfo=timezone.utc)  # half of both SLAs

        with pytest.raises(RuntimeError, match="a bug in this stage's step"):
            await Scheduler(stack.app[CORE], {}).tick()

        reminders = [i for i in outbox.items(stack.store.conn, "pending") if "Reminder" in i.payload.get("text", "")]
        assert [i.request_id for i in reminders] == [stack.store.find_requests("P00045")[0].id]
