"""`handoff demo`: the whole story on this machine — local Odoo or Dataverse, Slack or Teams fakes, real HTTP, no credentials."""

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
from .demo_chat import APPROVED, ORDERS, REJECTED, DemoChat, erp_notes
from .fakes.stack import SIGNING_SECRET, LocalStack, local_stack
from .fakes.stack_dataverse import WEBHOOK_KEY
from .routing_file import load_routing
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


async def story_two_stages(stack: LocalStack, chat: DemoChat, n: Narrator) -> None:
    reference, erp = ORDERS[stack.source][0], stack.source.capitalize()
    n.title(f"{reference} · 12,500 EUR from Acme Supplies: two stages, separation of duties, write-back")
    status, answer = await stack.send_order(reference)
    n.say(f"{erp} posts the webhook → HTTP {status} {answer['status']} (stored before the answer)")
    card = await chat.card("procurement", reference)
    n.say(f"Approval card in the procurement channel on {chat.name}")
    status, answer = await stack.send_order(reference, redeliver=True)
    await stack.settled()
    n.say(f"{erp} redelivers the same webhook → HTTP {status} {answer['status']}; still {chat.cards_for('procurement', reference)} card")
    told = await chat.approve("marc", card)
    n.say(f"Marc (who raised it) clicks Approve → privately: “{told}”")
    await chat.approve("dana", card)
    fiona = await chat.card("fiona", reference)
    n.say("Dana approves stage 1 → the card updates in place; stage 2 goes to Fiona (finance director) in a 1:1 chat")
    await chat.approve("fiona", fiona)
    await wait_until(lambda: stack.erp_status(reference) == APPROVED[stack.source], what=f"the approval in {erp}")
    n.say(f"Fiona approves → Handoff writes the approval to {erp} and re-reads it: state “{stack.erp_status(reference)}”")
    n.say("“What changed” reply under the card:")
    n.detail((await chat.thread(card))[-1])


async def story_drift(stack: LocalStack, chat: DemoChat, n: Narrator) -> None:
    reference, erp = ORDERS[stack.source][1], stack.source.capitalize()
    n.title(f"{reference} · Northwind Traders: the record changes in {erp} before anyone decides")
    await stack.send_order(reference)
    card = await chat.card("procurement", reference)
    n.say(f"Card posted (version {chat.version(card)})")
    stack.change_amount(reference, 4100.0)
    n.say(f"Someone raises the amount in {erp} to 4,100.00 (no webhook for that edit)")
    told = await chat.approve("erik", card)
    n.say(f"Erik clicks Approve on the old picture → not counted: “{told}”")
    await wait_until(lambda: chat.version(card) == 2, what="the refreshed card")
    n.say("The card refreshes in place (version 2) and says what changed")
    await chat.approve("erik", chat.current(card))
    await wait_until(lambda: stack.erp_status(reference) == APPROVED[stack.source], what=f"the approval in {erp}")
    n.say(f"Erik approves the current version → written to {erp} (“{stack.erp_status(reference)}”)")


async def story_reject(stack: LocalStack, chat: DemoChat, n: Narrator) -> None:
    reference, erp = ORDERS[stack.source][2], stack.source.capitalize()
    n.title(f"{reference} · small order: rejected with a reason, which lands on the record in {erp}")
    await stack.send_order(reference)
    card = await chat.card("procurement", reference)
    how = await chat.reject("dana", card, "Duplicate of an earlier order; reuse that one.")
    n.say(f"Dana clicks Reject → {how}")
    await wait_until(lambda: stack.erp_status(reference) == REJECTED[stack.source], what=f"the rejection in {erp}")
    # The reason is written to the record right after the state change.
    notes = await wait_until(lambda: erp_notes(stack, reference), what=f"the reason on the record in {erp}")
    kind = "chatter note" if stack.source == "odoo" else "note on the record"
    n.say(f"{erp}: state “{stack.erp_status(reference)}”, {kind}: “{notes[-1]}”")


async def story_status(stack: LocalStack, chat: DemoChat, n: Narrator) -> None:
    reference = ORDERS[stack.source][0]
    n.title(f"Anyone can ask Handoff in {chat.name}: status")
    answer = await chat.ask("erik", f"status {reference}")
    n.say(f"Erik asks “status {reference}”")
    n.detail(answer)


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
    await stack.card("fiona", "P00044")
    n.say(f"{clock_time(clock.now())} · past the SLA → escalated to Fiona (finance director) by DM; the card says so:")
    view = await Approvals(stack.app[CORE]).view(stack.store.find_requests("P00044")[0].id)
    n.detail(view.headline)
    n.say("One alert in #ops, with what is stuck, where, for how long, who holds it and the next action:")
    n.detail(alert.text)
    edited = lambda: "2nd escalation" in stack.slack.message(ops, alert.ts).text and stack.slack.message(ops, alert.ts)  # noqa: E731
    alert = await until(edited, "the second escalation")
    carla = await stack.card("carla", "P00044")
    n.say(f"{clock_time(clock.now())} · another SLA gone → the chain's next step, Carla (CFO), by DM; the card and the "
          "same #ops alert say so:")
    view = await Approvals(stack.app[CORE]).view(stack.store.find_requests("P00044")[0].id)
    n.detail(view.headline)
    n.detail(next(line for line in alert.text.splitlines() if line.startswith("Escalated")))
    stack.signer = SlackSigner(SIGNING_SECRET, SystemClock(), stack.slack.workspace)  # Slack signs with the real time
    body = stack.signer.slash_command_body(stack.slack_id("erik"), "erik", procurement, "procurement", "status P00044")
    status, text = await stack.post_slack(body)
    n.say(f"Erik asks /handoff status P00044 → HTTP {status}")
    n.detail(text)
    await stack.click("carla", carla, "handoff.approve")
    resolved = await wait_until(lambda: "Resolved" in stack.slack.message(ops, alert.ts).text and stack.slack.message(ops, alert.ts),
                                what="the resolved alert")
    n.say("Carla approves stage 1 from her escalated card → the same #ops alert is edited, not reposted:")
    n.detail(resolved.text)


async def run_demo(keep_running: bool = False, out=sys.stdout, source: str = "odoo", chat: str = "slack",
                   routing: Path | None = None) -> int:
    """The story for one mix; with your own `routing` there is no story: Handoff and the fakes wait for you."""
    n = Narrator(out)
    with tempfile.TemporaryDirectory(prefix="handoff-demo-") as tmp:
        database = Path(tmp) / "handoff.db"
        clock = OffsetClock()
        # The npm Teams playground sends no tokens: kept running on Teams, Handoff accepts it (and logs that loudly).
        playground = (keep_running or routing is not None) and chat == "teams"
        async with local_stack(database, clock=clock, handoff_port=3978 if keep_running or routing else 0, source=source,
                               chat=chat, local_development=playground, routing=load_routing(routing) if routing else None) as stack:
            n.title(f"Local servers on loopback: {source.capitalize()} → Handoff → {DemoChat(stack).name}")
            for name, url in stack.urls.items():
                n.detail(f"{name:9} {url}")
            if routing is None:
                ok = await _stories(stack, n, clock)
                if not keep_running:
                    return 0 if ok else 1
            _keep_running_notes(stack, n, Path(tmp))
            await asyncio.Event().wait()
            return 0


async def _stories(stack: LocalStack, n: Narrator, clock: OffsetClock) -> bool:
    people = DemoChat(stack)
    await story_two_stages(stack, people, n)
    await story_drift(stack, people, n)
    await story_reject(stack, people, n)
    await story_status(stack, people, n)
    if (stack.source, stack.chat) == ("odoo", "slack"):
        await story_stall(stack, n, clock)  # told with Slack's threads and Odoo's P00044
    await stack.settled()
    result = decision_log.verify(stack.store.conn)
    n.title("handoff log verify")
    n.say(f"{result.checked} decision-log entries, hash chain {'intact' if result.ok else 'BROKEN'}")
    return result.ok


def _keep_running_notes(stack: LocalStack, n: Narrator, folder: Path) -> None:
    """How to go on by hand: a ready webhook body per order that is still waiting, and where Teams connects."""
    n.title("Handoff and the fakes stay up; Ctrl-C to stop")
    for reference in ORDERS[stack.source] + (("P00044",) if stack.source == "odoo" else ()):
        if stack.store.find_requests(reference):
            continue
        body = folder / f"{reference}.json"
        if stack.dataverse:
            body.write_bytes(stack.dataverse.fake.webhook_body("purchaseorder", stack.orders[reference]))
            url = f"{stack.handoff_url}/webhooks/dataverse?code={WEBHOOK_KEY}"
        else:
            body.write_bytes(stack.odoo.webhook_body(stack.orders[reference]))
            url = stack.webhook_url()
        n.detail(f"{reference}: curl -H 'Content-Type: application/json' --data @{body} '{url}'")
    if stack.chat == "teams":
        n.detail("Teams: run `npx @microsoft/m365agentsplayground` against http://localhost:3978/api/messages (README, Teams by hand)")
