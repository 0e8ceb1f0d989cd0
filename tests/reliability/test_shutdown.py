"""SIGTERM: `handoff serve` finishes in-flight work within a bounded time, exits cleanly, and loses nothing."""

from __future__ import annotations


from handoff.bot.fakes.waiting import wait_until

PROCUREMENT = "C0PROCURE"


async def test_sigterm_right_after_a_webhook_exits_cleanly_and_the_event_still_becomes_one_card(handoff):
    await handoff.start()
    assert await handoff.send_order("P00043") == 200
    assert await handoff.terminate(timeout=20) == 0

    await handoff.start()
    await wait_until(lambda: handoff.fakes.cards(PROCUREMENT, "P00043"), timeout=20, what="the card")
    assert await handoff.terminate(timeout=20) == 0
    assert len(handoff.fakes.cards(PROCUREMENT, "P00043")) == 1


async def test_sigterm_while_odoo_hangs_still_exits_within_the_grace_period(handoff):
    await handoff.start()
    handoff.fakes.odoo.stall_next(50)  # every read hangs, as a stuck Odoo worker would
    assert await handoff.send_order("P00043") == 200
    await wait_until(lambda: handoff.fakes.odoo.requests, timeout=10, what="Handoff to start reading from Odoo")
    # Worker.stop allows 10 s for the round in flight, then gives up on it; the event stays queued for the next start.
    assert await handoff.terminate(timeout=60) == 0
