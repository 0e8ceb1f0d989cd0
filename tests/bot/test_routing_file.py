"""Loading the routing TOML: the sample loads, and every mistake is refused with file:line and the fix."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from handoff.bot.core.errors import ConfigError
from handoff.bot.core.route import RouteFacts, plan_route, targets_for_stage
from handoff.bot.core.route_config import RoutingInvalid
from handoff.bot.routing_file import check, load_routing

SAMPLE = Path(__file__).resolve().parents[2] / "bot" / "samples" / "routing.toml"

# Line numbers below are pinned against this text: edit it and the expected messages move.
BASE = """\
[defaults]
ops_channel = "ops"

[people.dana]
name = "Dana"
slack = "U0DANA"

[people.erik]
name = "Erik"
slack = "U0ERIK"

[people.marc]
name = "Marc"
slack = "U0MARC"
erp_login = "marc@example.com"

[roles.managers]
members = ["dana", "erik"]

[roles.directors]
members = ["erik"]

[channels.procurement]
slack = "C0PROCURE"

[channels.ops]
slack = "C0OPS"

[[rules]]
name = "small"
amount_below = 10000
[[rules.stages]]
role = "managers"
channel = "procurement"

[[rules]]
name = "large"
amount_at_least = 10000
[[rules.stages]]
role = "managers"
mode = "first"
channel = "procurement"
[[rules.stages]]
role = "directors"
deliver = "dm"
escalate_to = "managers"
"""


def write(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = BASE
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_in(path: Path) -> list[str]:
    with pytest.raises(RoutingInvalid) as caught:
        load_routing(path)
    return caught.value.problems


def test_the_sample_loads_and_check_summarises_it():
    ok, lines = check(SAMPLE)

    assert ok
    assert lines == [
        f"{SAMPLE}: OK",
        "People (6): dana, erik, fiona, carla, marc, gus",
        "Roles (4): procurement_manager (dana, erik); finance_director (fiona); chief_financial_officer (carla); "
        "apac_procurement (gus)",
        "Rules (4): local: eu-compliance-review; regional: po-apac; global: po-standard, po-large",
        "Channels (3): procurement, finance, ops",
        "Defaults: platform slack, ops channel 'ops', SLA 8 h",
    ]


def test_the_sample_routes_a_large_order_by_marc_to_managers_then_fiona_by_dm():
    config = load_routing(SAMPLE)
    facts = RouteFacts(source="odoo", model="purchase.order", amount=Decimal("12500"), currency="EUR", region="EU")

    plan = plan_route(config, facts)

    assert (plan.rule, [s.role for s in plan.stages]) == ("po-large", ["procurement_manager", "finance_director"])
    assert [t.address for t in targets_for_stage(config, plan, plan.stages[0], {"marc"})] == ["C0PROCURE"]
    assert [(t.kind, t.address, t.person) for t in targets_for_stage(config, plan, plan.stages[1], {"marc"})] == [
        ("dm", "U0FIONA", "fiona")
    ]


def test_the_base_config_loads(tmp_path):
    config = load_routing(write(tmp_path))

    assert [rule.name for rule in config.rules] == ["small", "large"]


def test_escalate_to_takes_one_role_or_a_chain_of_roles(tmp_path):
    one = load_routing(write(tmp_path))
    chain = load_routing(write(tmp_path, ('escalate_to = "managers"', 'escalate_to = ["managers", "heads"]'),
                               ("[roles.directors]", '[roles.heads]\nmembers = ["dana"]\n\n[roles.directors]')))

    assert one.rules[1].stages[1].escalate_to == ("managers",)
    assert chain.rules[1].stages[1].escalate_to == ("managers", "heads")


def test_a_stage_without_escalate_to_climbs_its_roles_managers(tmp_path):
    config = load_routing(write(tmp_path, ('members = ["dana", "erik"]', 'members = ["dana", "erik"]\nmanager = "directors"'),
                                ("[roles.directors]", '[roles.heads]\nmembers = ["dana"]\n\n[roles.directors]\nmanager = "heads"')))
    facts = RouteFacts(source="odoo", model="purchase.order", amount=Decimal("12500"), currency="EUR", region="EU")

    plan = plan_route(config, facts)

    assert [s.escalate_to for s in plan.stages] == [("directors", "heads"), ("managers",)], "escalate_to, when given, wins"


CROSS_CHECKS = {
    "unknown stage role": (
        [('role = "directors"', 'role = "directorz"')],
        "{path}:44: rule 'large' stage 2 names role 'directorz', which is not defined. "
        "Fix: add [roles.directorz] or use one of: directors, managers.",
    ),
    "unknown escalation role": (
        [('escalate_to = "managers"', 'escalate_to = "boss"')],
        "{path}:46: rule 'large' stage 2 escalates to role 'boss', which is not defined. "
        "Fix: add [roles.boss] or use one of: directors, managers.",
    ),
    "unknown role in an escalation chain": (
        [('escalate_to = "managers"', 'escalate_to = ["managers", "boss"]')],
        "{path}:46: rule 'large' stage 2 escalates to role 'boss', which is not defined. "
        "Fix: add [roles.boss] or use one of: directors, managers.",
    ),
    "a role twice in an escalation chain": (
        [('escalate_to = "managers"', 'escalate_to = ["managers", "managers"]')],
        "{path}:46: rule 'large' stage 2 escalates to role 'managers' twice (step 2 repeats it), so that step would "
        "tell nobody new. Fix: list each role once in escalate_to.",
    ),
    "the stage's own role in its escalation chain": (
        [('escalate_to = "managers"', 'escalate_to = ["managers", "directors"]')],
        "{path}:46: rule 'large' stage 2 escalates to its own role 'directors' (step 2), whose members already hold "
        "the stage. Fix: remove 'directors' from escalate_to and name the role above it.",
    ),
    "unknown manager role": (
        [('members = ["dana", "erik"]', 'members = ["dana", "erik"]\nmanager = "bosses"')],
        "{path}:19: role 'managers' names manager role 'bosses', which is not defined. "
        "Fix: add [roles.bosses] or use one of: directors, managers.",
    ),
    "roles managing each other": (
        [('members = ["dana", "erik"]', 'members = ["dana", "erik"]\nmanager = "directors"'),
         ('members = ["erik"]', 'members = ["erik"]\nmanager = "managers"')],
        "{path}:23: roles directors → managers → directors manage each other in a circle, so an escalation up that "
        "line would never end. Fix: remove manager from one of them.",
    ),
    "role without members": (
        [('members = ["erik"]', "members = []")],
        "{path}:20: role 'directors' has no members, so nobody could decide its stages. "
        "Fix: list at least one person key in members = [...] under [roles.directors].",
    ),
    "member not in people": (
        [('members = ["erik"]', 'members = ["fiona"]')],
        "{path}:21: role 'directors' lists 'fiona', who is not in [people]. Fix: add [people.fiona] or use one of: dana, erik, marc.",
    ),
    "unknown channel": (
        [('channel = "procurement"\n\n', 'channel = "procurment"\n\n')],
        "{path}:34: rule 'small' stage 1 names channel 'procurment', which is not defined. "
        "Fix: add [channels.procurment] or use one of: ops, procurement.",
    ),
    "channel delivery without a channel": (
        [('role = "managers"\nchannel = "procurement"\n', 'role = "managers"\ndeliver = "channel"\n')],
        "{path}:34: rule 'small' stage 1 delivers to a channel but names none. "
        'Fix: add channel = "<key>" (one of: ops, procurement) or set deliver = "dm".',
    ),
    "channel without an address for the rule's platform": (
        [('name = "small"', 'name = "small"\nplatform = "teams"'), ('slack = "C0OPS"', 'slack = "C0OPS"\nteams = "19:ops@thread.tacv2"')],
        "{path}:36: rule 'small' stage 1 posts to channel 'procurement' on teams, but [channels.procurement] has no teams "
        'address. Fix: add teams = "<Teams channel id, e.g. 19:…@thread.tacv2>" to [channels.procurement] or set the rule\'s platform.',
    ),
    "ops channel without an address for a platform in use": (
        [('name = "small"', 'name = "small"\nplatform = "teams"'), ('slack = "C0PROCURE"', 'slack = "C0PROCURE"\nteams = "19:p@thread.tacv2"')],
        "{path}:27: [channels.ops] has no teams address, but it is the ops channel and requests are routed on teams. "
        'Fix: add teams = "<Teams channel id, e.g. 19:…@thread.tacv2>" to [channels.ops].',
    ),
    "unknown ops channel": (
        [('ops_channel = "ops"', 'ops_channel = "alerts"')],
        "{path}:2: [defaults] ops_channel 'alerts' is not a channel, so failures and stall alerts have nowhere to go. "
        "Fix: add [channels.alerts] or set ops_channel to one of: ops, procurement.",
    ),
    "quorum mode without quorum": (
        [('mode = "first"', 'mode = "quorum"')],
        "{path}:41: rule 'large' stage 1 uses mode = \"quorum\" without a quorum. "
        "Fix: add quorum = N (at most 2, the members of role 'managers').",
    ),
    "quorum above the role's members": (
        [('mode = "first"', 'mode = "quorum"\nquorum = 3')],
        "{path}:42: rule 'large' stage 1 needs a quorum of 3, but role 'managers' has only 2 member(s). "
        "Fix: lower quorum to at most 2 or add members to [roles.managers].",
    ),
    "DM to a person without an id on that platform": (
        [('slack = "U0ERIK"', 'teams = "0b7e4a91-2c3d-4e5f-8a6b-7c8d9e0f1a2b"')],
        "{path}:8: person 'erik' has no slack id, but rule 'large' stage 2 sends DMs to role 'directors' on slack. "
        'Fix: add slack = "<Slack user id, e.g. U0123ABCD>" to [people.erik].',
    ),
    "two rules with one name": (
        [('name = "large"', 'name = "small"')],
        "{path}:37: two rules are named 'small' (the other is at {path}:29). "
        "Fix: give each rule a unique name; requests record the rule by name.",
    ),
    "overlapping tiers": (
        [("amount_below = 10000", "amount_below = 10001")],
        "{path}:36: rule 'large' overlaps rule 'small' at {path}:29: both are global and both match amounts from "
        "10,000 to below 10,001 with any exception type or none, so neither wins. "
        "Fix: make the amount tiers disjoint or narrow exception_types.",
    ),
}


@pytest.mark.parametrize("edits, expected", CROSS_CHECKS.values(), ids=CROSS_CHECKS.keys())
def test_a_config_that_does_not_hold_together_is_refused_at_its_line(tmp_path, edits, expected):
    path = write(tmp_path, *edits)

    assert problems_in(path) == [expected.format(path=path)]


FIELD_ERRORS = {
    "unknown exception type": (
        [("amount_below = 10000", 'amount_below = 10000\nexception_types = ["credit-hold"]')],
        "{path}:32: rule 'small' exception_types is 'credit-hold', which is not allowed. Fix: use 'credit_hold', "
        "'stockout', 'pricing_variance', 'compliance_review', 'address_validation_failure' or 'carrier_capacity'.",
    ),
    "unknown mode": (
        [('mode = "first"', 'mode = "fastest"')],
        "{path}:41: rule 'large' stage 1 mode is 'fastest', which is not allowed. Fix: use 'first', 'quorum' or 'all'.",
    ),
    "misspelt key": (
        [('slack = "U0MARC"', 'slak = "U0MARC"')],
        "{path}:14: [people.marc] has an unknown key 'slak'. Fix: remove it or correct its spelling.",
    ),
    "missing person name": (
        [('name = "Erik"\n', "")],
        "{path}:8: [people.erik] is missing name. Fix: add name = ... to it.",
    ),
    "empty regions": (
        [("amount_below = 10000", "amount_below = 10000\nregions = []")],
        "{path}:32: rule 'small' regions: an empty list matches nothing. Fix: list at least one value, or leave the key out to match any.",
    ),
    "tier bounds the wrong way round": (
        [("amount_below = 10000", "amount_below = 10000\namount_at_least = 20000")],
        "{path}:29: rule 'small': amount_at_least (20000) must be below amount_below (10000), or the rule matches no "
        "amount. Fix: swap or correct the two bounds.",
    ),
}


@pytest.mark.parametrize("edits, expected", FIELD_ERRORS.values(), ids=FIELD_ERRORS.keys())
def test_a_malformed_value_is_refused_at_its_line(tmp_path, edits, expected):
    path = write(tmp_path, *edits)

    assert problems_in(path) == [expected.format(path=path)]


def test_a_file_without_rules_is_refused(tmp_path):
    path = tmp_path / "routing.toml"
    path.write_text(BASE[: BASE.index("[[rules]]")], encoding="utf-8")

    assert problems_in(path) == [
        f"{path}: the file has no [[rules]], so no request could be routed. "
        "Fix: add at least one [[rules]] table (see bot/samples/routing.toml)."
    ]


def test_a_toml_syntax_error_keeps_tomllibs_line_and_column(tmp_path):
    path = write(tmp_path, ('name = "small"', "name = small"))

    with pytest.raises(ConfigError) as caught:
        load_routing(path)

    assert str(caught.value) == (
        f"{path}:30: TOML syntax error: Invalid value (at line 30, column 8). "
        "Fix: correct the syntax there (see https://toml.io/en/v1.0.0)."
    )


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path, ('role = "directors"', 'role = "directorz"'), ('ops_channel = "ops"', 'ops_channel = "alerts"'))

    with pytest.raises(RoutingInvalid) as caught:
        load_routing(path)

    assert str(caught.value).splitlines() == [
        "The routing config has 2 problems:",
        f"{path}:2: [defaults] ops_channel 'alerts' is not a channel, so failures and stall alerts have nowhere to go. "
        "Fix: add [channels.alerts] or set ops_channel to one of: ops, procurement.",
        f"{path}:44: rule 'large' stage 2 names role 'directorz', which is not defined. "
        "Fix: add [roles.directorz] or use one of: directors, managers.",
    ]
    assert check(path) == (False, caught.value.problems)


def test_a_missing_file_says_where_to_find_a_sample(tmp_path):
    path = tmp_path / "nope.toml"

    assert check(path) == (
        False,
        [f"Routing file {path} not found. Fix: pass the path of your routing TOML, or copy bot/samples/routing.toml there."],
    )
