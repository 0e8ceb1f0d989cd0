"""`handoff demo`: the whole story on this machine — local Odoo and Slack fakes, real HTTP, no credentials."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

from handoff.bot.core.act import Approvals
from handoff.bot.core.ports import SystemClock
from handoff.bot.core.view import clock_time
from handoff.state import decision_log
from handoff.state.schedule_store import ScheduleStore

from .app import CORE
from .fakes.clock import OffsetClock
from .fakes.slack import SlackSigner
from .fakes.stack import SIGNING_SECRET, LocalStack, button_binding, local_stack
from .fakes.waiting import wait_until


class Narrator:
    def __init__(self, out=sys.stdout) -> None:
        self.out = out
        self.step = 0

    def title(self, text: str) -> None:
        print(f"\n== {text}", file=self.out, flush=True)

    def say(self, text: str) -> None:
        self.step += 1
        print(f"  {self.step:>2}. {text}", file=self.out, flush=True)

    def detail(self, text: str) -> None:
        for line in text.splitlines():
            print(f"      │ {line}", file=self.out, flush=True)


def _card_summary(card) -> str:
    return card.text


async def story_two_stages(stack: LocalStack, n: Narrator) -> None:
    n.title("P00042 · 12,500 EUR from Acme Supplies: two stages, separation of duties, write-back")
    status, answer = await stack.send_order("P00042")
    n.say(f"Odoo's automation rule posts the webhook → HTTP {status} {answer['status']} (stored before the answer)")
    card = await stack.card(stack.routing.channels["procurement"].slack, "P00042")
    n.say(f"Approval card in #procurement: “{card.text}”")
    status, answer = await stack.send_order("P00042")
    await stack.settled()
    posted = [m for m in stack.slack.messages[card.channel] if "P00042" in m.text and m.thread_ts is None]
    n.say(f"Odoo redelivers the same webhook → HTTP {status} {answer['status']}; still {len(posted)} card")
    await stack.click("marc", card, "handoff.approve")
    whisper = await wait_until(lambda: stack.whispers_to("marc"), what="a private reply to Marc")
    n.say(f"Marc (who raised it) clicks Approve → privately: “{whisper[-1]}”")
    await stack.click("dana", card, "handoff.approve")
    fiona = await stack.card("fiona", "P00042")
    n.say("Dana approves stage 1 → the card updates in place; stage 2 goes to Fiona (finance director) by DM")
    await stack.click("fiona", fiona, "handoff.approve")
    thread = await wait_until(lambda: stack.slack.thread_replies(card.channel, card.ts), what="the what-changed thread")
    order = stack.odoo.db.records["purchase.order"][stack.orders["P00042"]]
    n.say(f"Fiona approves → Handoff approves the PO in Odoo and re-reads it: state “{order['state']}”")
    n.say("“What changed” reply in the card's thread:")
    n.detail(thread[-1].text)


async def story_drift(stack: LocalStack, n: Narrator) -> None:
    n.title("P00043 · Northwind Traders: the record changes in Odoo before anyone decides")
    await stack.send_order("P00043")
    card = await stack.card(stack.routing.channels["procurement"].slack, "P00043")
    n.say(f"Card posted: “{card.text}”")
    order_id = stack.orders["P00043"]
    stack.odoo.set_field("purchase.order", order_id, amount_total=4100.0)
    n.say("Someone raises the amount in Odoo to 4,100.00 EUR (no webhook for that edit)")
    await stack.click("erik", card, "handoff.approve")
    whisper = await wait_until(lambda: stack.whispers_to("erik"), what="Erik's private reply")
    n.say(f"Erik clicks Approve on the old picture → not counted: “{whisper[-1]}”")
    refreshed = await wait_until(lambda: button_binding(stack.slack.message(card.channel, card.ts), "handoff.approve")["v"] == 2
                                 and stack.slack.message(card.channel, card.ts), what="the refreshed card")
    n.say("The card refreshes in place (version 2) and says what changed")
    await stack.click("erik", refreshed, "handoff.approve")
    await wait_until(lambda: stack.odoo.db.records["purchase.order"][order_id]["state"] == "purchase", what="the approval in Odoo")
    n.say("Erik approves the current version → written to Odoo (state “purchase”)")


async def story_reject(stack: LocalStack, n: Narrator) -> None:
    n.title("P00045 · small order: rejected with a reason, which lands in Odoo's chatter")
    await stack.send_order("P00045")
    card = await stack.card(stack.routing.channels["procurement"].slack, "P00045")
    await stack.click("dana", card, "handoff.reject")
    await wait_until(lambda: stack.slack.views, what="the reject modal")
    n.say("Dana clicks Reject → a modal asks for the reason")
    await stack.submit_modal("dana", "Duplicate of P00038; reuse that order.")
    order_id = stack.orders["P00045"]
    await wait_until(lambda: stack.odoo.db.records["purchase.order"][order_id]["state"] == "cancel", what="the cancel in Odoo")
    notes = [m for m in stack.odoo.db.records.get("mail.message", {}).values() if m.get("res_id") == order_id]
    n.say(f"Odoo: order cancelled, chatter note: “{notes[-1]['body'] if notes else '?'}”")


async def story_status(stack: LocalStack, n: Narrator) -> None:
    n.title("Anyone can ask: /handoff status")
    body = stack.signer.slash_command_body(stack.slack_id("erik"), "erik", stack.routing.channels["procurement"].slack, "procurement", "status P00042")
    status, text = await stack.post_slack(body)
    n.say(f"Erik types /handoff status P00042 → HTTP {status}")
    n.detail(text)


async def story_stall(stack: LocalStack, n: Narrator, clock: OffsetClock) -> None:
    n.title("P00044 · 48,000 USD from Globex Logistics: nobody decides, and Handoff doesn't let it stall silently")
    await stack.send_order("P00044")
    procurement = stack.routing.channels["procurement"].slack
    card = await stack.card(procurement, "P00044")
    n.say(f"Card posted in #procurement at {clock_time(clock.now())}; its SLA is 8 business hours (Mon–Fri 09–17 UTC by default)")
    schedule = ScheduleStore(stack.store)

    async def until(found, what: str):
        """Jump the clock to each next scheduled step until `found()` shows up (reminders wait for working hours)."""
        for _ in range(8):
            if result := found():
                return result
            clock.jump_to(schedule.next_due() or clock.now())
            stack.app[CORE].wake()
            await stack.settled()
            with contextlib.suppress(TimeoutError):
                return await wait_until(found, timeout=3.0, what=what)
        raise TimeoutError(f"the demo never saw {what}")

    thread = lambda text: [m for m in stack.slack.thread_replies(procurement, card.ts) if text in m.text]  # noqa: E731
    reminder = await until(lambda: thread("Reminder: P00044"), "the 50% reminder")
    n.say(f"{clock_time(clock.now())} · half the SLA gone → a reminder in the card's thread:")
    n.detail(reminder[0].text)
    ops = stack.routing.channels["ops"].slack
    alert = (await until(lambda: [m for m in stack.slack.messages.get(ops, []) if "Stalled: P00044" in m.text], "the stall alert"))[0]
    fiona = await stack.card("fiona", "P00044")
    n.say(f"{clock_time(clock.now())} · past the SLA → escalated to Fiona (finance director) by DM; the card says so:")
    view = await Approvals(stack.app[CORE]).view(stack.store.find_requests("P00044")[0].id)
    n.detail(view.headline)
    n.say("One alert in #ops, with what is stuck, where, for how long, who holds it and the next action:")
    n.detail(alert.text)
    stack.signer = SlackSigner(SIGNING_SECRET, SystemClock(), stack.slack.workspace)  # Slack signs with the real time
    body = stack.signer.slash_command_body(stack.slack_id("erik"), "erik", procurement, "procurement", "status P00044")
    status, text = await stack.post_slack(body)
    n.say(f"Erik asks /handoff status P00044 → HTTP {status}")
    n.detail(text)
    await stack.click("fiona", fiona, "handoff.approve")
    resolved = await wait_until(lambda: "Resolved" in stack.slack.message(ops, alert.ts).text and stack.slack.message(ops, alert.ts),
                                what="the resolved alert")
    n.say("Fiona approves stage 1 from her escalated card → the same #ops alert is edited, not reposted:")
    n.detail(resolved.text)


async def run_demo(keep_running: bool = False, out=sys.stdout) -> int:
    n = Narrator(out)
    with tempfile.TemporaryDirectory(prefix="handoff-demo-") as tmp:
        database = Path(tmp) / "handoff.db"
        clock = OffsetClock()
        async with local_stack(database, clock=clock, handoff_port=3978 if keep_running else 0) as stack:
            n.title("Local servers on loopback")
            for name, url in stack.urls.items():
                n.detail(f"{name:8} {url}")
            await story_two_stages(stack, n)
            await story_drift(stack, n)
            await story_reject(stack, n)
            await story_status(stack, n)
            await story_stall(stack, n, clock)
            await stack.settled()
            result = decision_log.verify(stack.store.conn)
            n.title("handoff log verify")
            n.say(f"{result.checked} decision-log entries, hash chain {'intact' if result.ok else 'BROKEN'}")
            if keep_running:
                n.detail("Handoff, fake Odoo and fake Slack stay up; Ctrl-C to stop.")
                n.detail(f"Webhook URL for Odoo: {stack.webhook_url()}")
                await asyncio.Event().wait()
            return 0 if result.ok else 1
