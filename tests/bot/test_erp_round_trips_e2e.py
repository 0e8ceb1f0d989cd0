"""How many calls Handoff makes to the ERP per order and per approval: each one is load on the customer's Odoo."""

from __future__ import annotations

from collections import Counter


from handoff.bot.fakes.waiting import wait_until

PROCUREMENT = "C0PROCURE"


def calls_since(stack, before: Counter) -> dict[str, int]:
    return {call: n for call, n in (Counter(stack.odoo.calls) - before).items() if call != "web.version"}


async def test_an_approval_checks_the_order_once_then_writes_back_with_one_re_read(stack):
    await stack.send_order("P00043")
    card = await stack.card(PROCUREMENT, "P00043")
    await stack.settled()
    before = Counter(stack.odoo.calls)

    await stack.click("erik", card, "handoff.approve")
    await wait_until(lambda: stack.odoo.calls["purchase.order.message_post"] > before["purchase.order.message_post"],
                     what="the approval noted in Odoo's chatter")
    await stack.settled()

    # The check before the decision counts reads the order's standing and its lines; the write-back approves, re-reads
    # where the order stands to confirm it took, and notes it in the chatter.
    assert calls_since(stack, before) == {"purchase.order.read": 2, "purchase.order.line.read": 1,
                                          "purchase.order.button_approve": 1, "purchase.order.message_post": 1}
