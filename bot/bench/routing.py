"""The bench's routing file: the sample's people and roles, and one channel per amount tier so cards spread out.

Handoff paces chat.postMessage to one a second per channel (Slack: "one message per second per channel",
bot/core/pacing.py), so a sustained load needs at least as many channels as cards per second.
"""

from __future__ import annotations

from pathlib import Path

from handoff.bot.core.route import RoutingConfig
from handoff.bot.routing_file import load_routing

CHANNELS = 256
TIER = 10  # EUR per amount tier: an order of n * TIER + 5 goes to channel n


def channel_key(tier: int) -> str:
    return f"bench{tier:03d}"


def slack_channel(tier: int) -> str:
    return f"C0BENCH{tier:03d}"


# The ceiling's posts land here, apart from every card, so the bench can drop them between levels.
CEILING_CHANNEL = "C0CEILING"


def amount_for(number: int) -> float:
    """An amount that lands order `number` in its own tier, round robin over the channels."""
    return (number % CHANNELS) * TIER + TIER / 2


def write_routing(path: Path) -> RoutingConfig:
    """Write the bench routing TOML to `path` and load it as `handoff serve --routing` would."""
    parts = [
        '[defaults]\nplatform = "slack"\nops_channel = "ops"\nsla_hours = 8\n',
        '[people.dana]\nname = "Dana Approver"\nslack = "U0DANA"\nerp_login = "dana@example.com"\n',
        '[people.erik]\nname = "Erik Lindqvist"\nslack = "U0ERIK"\nerp_login = "erik@example.com"\n',
        '[people.marc]\nname = "Marc Buyer"\nslack = "U0MARC"\nerp_login = "marc@example.com"\n',
        '[roles.procurement_manager]\nmembers = ["dana", "erik"]\n',
        '[channels.ops]\nslack = "C0OPS"\n',
        f'[channels.ceiling]\nslack = "{CEILING_CHANNEL}"\n',
    ]
    for tier in range(CHANNELS):
        parts.append(f'[channels.{channel_key(tier)}]\nslack = "{slack_channel(tier)}"\n')
    for tier in range(CHANNELS):
        parts.append(
            f'[[rules]]\nname = "{channel_key(tier)}"\namount_at_least = {tier * TIER}\namount_below = {(tier + 1) * TIER}\n'
            f'[[rules.stages]]\nrole = "procurement_manager"\nmode = "first"\ndeliver = "channel"\nchannel = "{channel_key(tier)}"\n'
        )
    path.write_text("\n".join(parts))
    return load_routing(path)
