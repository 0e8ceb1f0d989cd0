"""The bench's routing file: the sample's people and roles, and one channel per amount tier so cards spread out.

Handoff paces chat.postMessage to one a second per channel (Slack: "one message per second per channel",
bot/core/pacing.py) and Teams posts to seven a second per thread, so a sustained load needs many channels.
"""

from __future__ import annotations

from pathlib import Path

from handoff.bot.core.models import Platform
from handoff.bot.core.route import RoutingConfig
from handoff.bot.routing_file import load_routing

CHANNELS = 256
# Teams allows seven posts a second per thread where Slack allows one, so a quarter of the channels carry the load;
# fewer channels also means fewer installs to send before a Teams run.
TEAMS_CHANNELS = 64
TIER = 10  # EUR per amount tier: an order of n * TIER + 5 goes to channel n


def channel_key(tier: int) -> str:
    return f"bench{tier:03d}"


def slack_channel(tier: int) -> str:
    return f"C0BENCH{tier:03d}"


def teams_channel(tier: int) -> str:
    return f"19:bench{tier:03d}@thread.tacv2"


# AAD object ids (GUIDs) of the people, for the Teams runs.
AAD = {"dana": "0d4a0000-0000-4000-8000-00000000da4a", "erik": "0e71c000-0000-4000-8000-0000000e71c0",
       "marc": "0aa7c000-0000-4000-8000-0000000aa7c0"}


# The ceiling's posts land here, apart from every card, so the bench can drop them between levels.
CEILING_CHANNEL = "C0CEILING"


def amount_for(number: int) -> float:
    """An amount that lands order `number` in its own tier, round robin over the channels."""
    return (number % CHANNELS) * TIER + TIER / 2


def write_routing(path: Path, chat: Platform = "slack") -> RoutingConfig:
    """Write the bench routing TOML for `chat` to `path` and load it as `handoff serve --routing` would."""
    def person(key: str, name: str, slack: str) -> str:
        address = f'slack = "{slack}"' if chat == "slack" else f'teams = "{AAD[key]}"'
        return f'[people.{key}]\nname = "{name}"\n{address}\nerp_login = "{key}@example.com"\n'

    def channel(key: str, slack: str, teams: str) -> str:
        return f'[channels.{key}]\n{chat} = "{slack if chat == "slack" else teams}"\n'

    parts = [
        f'[defaults]\nplatform = "{chat}"\nops_channel = "ops"\nsla_hours = 8\n',
        person("dana", "Dana Approver", "U0DANA"), person("erik", "Erik Lindqvist", "U0ERIK"), person("marc", "Marc Buyer", "U0MARC"),
        '[roles.procurement_manager]\nmembers = ["dana", "erik"]\n',
        channel("ops", "C0OPS", "19:bench-ops@thread.tacv2"),
    ]
    if chat == "slack":
        parts.append(channel("ceiling", CEILING_CHANNEL, ""))
    channels = CHANNELS if chat == "slack" else TEAMS_CHANNELS
    for tier in range(channels):
        parts.append(channel(channel_key(tier), slack_channel(tier), teams_channel(tier)))
    for tier in range(CHANNELS):
        parts.append(
            f'[[rules]]\nname = "tier{tier:03d}"\namount_at_least = {tier * TIER}\namount_below = {(tier + 1) * TIER}\n'
            f'[[rules.stages]]\nrole = "procurement_manager"\nmode = "first"\ndeliver = "channel"\n'
            f'channel = "{channel_key(tier % channels)}"\n'
        )
    path.write_text("\n".join(parts))
    return load_routing(path)
