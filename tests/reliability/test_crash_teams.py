"""kill -9 of a real `handoff serve` between the Bot Connector's answer and our bookkeeping (`mid_post`), on Teams."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from crash_harness import Fakes, Handoff, fakes
from test_crash_recovery import KILLED, chain_ok, events, settled

from handoff.bot.core.events import Event
from handoff.bot.core.ports import SystemClock
from handoff.bot.fakes.botconnector import FakeBotConnector
from handoff.bot.fakes.graph import FakeGraph
from handoff.bot.fakes.stack import routing_for
from handoff.bot.fakes.stack_teams import TeamsCard, TeamsDriver, teams_fakes, teams_settings
from handoff.bot.fakes.waiting import wait_until

APPROVE = "handoff.approve"


@dataclass
class OnTeams:
    """The crash harness's fake Odoo, with Teams (connector + Graph) as the chat and the sample routing set to Teams."""

    base: Fakes
    connector: FakeBotConnector
    graph: FakeGraph
    routing_file: Path

    @property
    def odoo(self):
        return self.base.odoo

    @property
    def orders(self) -> dict[str, int]:
        return self.base.orders

    def env(self, database: Path | str, port: int) -> dict[str, str]:
        env = {k: v for k, v in self.base.env(database, port).items() if not k.startswith("HANDOFF_SLACK__")}
        teams = teams_settings(self.connector, graph_read=True).model_dump()
        teams["app_password"] = teams["app_password"].get_secret_value()
        env.update({f"HANDOFF_TEAMS__{name.upper()}": str(value) for name, value in teams.items() if value is not None})
        return {**env, "HANDOFF_ROUTING": str(self.routing_file)}


@pytest.fixture
async def on_teams(tmp_path):
    routing = routing_for("teams", tmp_path)
    async with fakes() as running, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        # System time: the served process stamps outbox items with it, and Graph's view is compared against them.
        with teams_fakes(SystemClock()) as (connector, service_url, graph):
            process = Handoff(OnTeams(running, connector, graph, tmp_path / "routing-teams.toml"), tmp_path / "handoff.db", http)  # type: ignore[arg-type]
            driver = TeamsDriver(connector, service_url, routing, f"{process.url}/api/messages", http, graph=graph)
            try:
                yield process, driver
            finally:
                await process.kill()


def cards(driver: TeamsDriver, reference: str) -> list[TeamsCard]:
    conversation = driver.conversation("procurement")
    return [TeamsCard(conversation, a["id"], a) for a in driver.connector.activities.get(conversation, [])
            if a.get("attachments") and not a.get("replyToId") and reference in str(a["attachments"])]


async def test_a_crash_between_the_connectors_answer_and_our_bookkeeping_adopts_the_card_through_graph(on_teams):
    handoff, teams = on_teams
    await handoff.start(crash_at="mid_post")
    await teams.install()
    assert await handoff.send_order("P00043") == 200
    assert await handoff.died() == KILLED
    assert len(cards(teams, "P00043")) == 1, "the Bot Connector had the card when the process died"

    await handoff.start()
    await wait_until(lambda: settled(handoff.database), timeout=20, what="the queues to drain")

    [card] = cards(teams, "P00043")
    assert card.activity.get("updates", 0) >= 1, "the adopted card was brought up to date"
    assert any("/channels/" in path for path, _ in teams.graph.reads), "the second claim read the channel through Graph"
    assert events(handoff.database, "P00043").count(Event.CARD_POSTED) == 1
    # The adopted card is the one Handoff knows: a click on it counts, once.
    status, _ = await teams.invoke("erik", card, APPROVE)
    assert status == 200
    order = handoff.fakes.odoo.db.records["purchase.order"][handoff.fakes.orders["P00043"]]
    await wait_until(lambda: order["state"] == "purchase", timeout=20, what="the approval from the adopted card")
    await wait_until(lambda: settled(handoff.database), timeout=20, what="the queues to drain after the click")
    assert handoff.fakes.odoo.calls["purchase.order.button_approve"] == 1
    assert len(cards(teams, "P00043")) == 1
    assert chain_ok(handoff.database)


async def test_without_the_rsc_grant_the_window_stays_open_and_the_log_says_how_to_close_it(on_teams):
    """A team that never granted consent: Graph answers 403, Handoff posts again (the old behaviour) and says why."""
    handoff, teams = on_teams
    teams.graph = None  # installed without granting the app's resource-specific consent
    await handoff.start(crash_at="mid_post")
    await teams.install()
    assert await handoff.send_order("P00043") == 200
    assert await handoff.died() == KILLED

    await handoff.start()
    await wait_until(lambda: settled(handoff.database), timeout=20, what="the queues to drain")

    assert len(cards(teams, "P00043")) == 2
    assert events(handoff.database, "P00043").count(Event.CARD_POSTED) == 1
    logs = "".join(p.read_text() for p in handoff.log_folder.glob("handoff-*.log"))
    assert "card.lookup_refused" in logs and "resource-specific consent" in logs
