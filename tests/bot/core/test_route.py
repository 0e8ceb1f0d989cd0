"""Routing: precedence, amount tiers, exception types, explanations, and who receives each stage."""

from __future__ import annotations

from decimal import Decimal

import pytest

from handoff.bot.core.models import ErpPerson, ErpRecord, RecordRef, RoutePlan, StageMode, Target
from handoff.bot.core.route import (
    NoRouteError,
    RouteFacts,
    RoutingConfig,
    can_decide,
    explain,
    members,
    ops_target,
    person_for_erp,
    person_for_identity,
    plan_route,
    platform_of,
    targets_for_stage,
)
from handoff.bot.core.route_config import RoutingInvalid

DANA_TEAMS = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
TEAMS_TOO = {"procurement": {"slack": "C0PROCURE", "teams": "19:proc@thread.tacv2"}, "ops": {"slack": "C0OPS", "teams": "19:ops@thread.tacv2"}}


def stage(role: str = "managers", **extra: object) -> dict:
    return {"role": role, "channel": "procurement", **extra}


def build(*rules: dict, **sections: object) -> RoutingConfig:
    data = {
        "people": {
            "dana": {"name": "Dana", "slack": "U0DANA", "teams": DANA_TEAMS, "email": "dana@example.com", "erp_login": "dana"},
            "erik": {"name": "Erik", "slack": "U0ERIK", "email": "Erik@Example.com"},
            "marc": {"name": "Marc", "slack": "U0MARC", "erp_login": "marc@example.com"},
            "gus": {"name": "Gus", "slack": "U0GUS"},
        },
        "roles": {"managers": {"members": ["dana", "erik", "marc"]}, "apac": {"members": ["gus"]}, "buyers": {"members": ["marc"]}},
        "channels": {"procurement": {"slack": "C0PROCURE", "teams": "19:proc@thread.tacv2"}, "ops": {"slack": "C0OPS"}},
        "rules": list(rules),
        **sections,
    }
    return RoutingConfig.model_validate(data)


def facts(amount: str | None = "5000", **extra: object) -> RouteFacts:
    return RouteFacts(source="odoo", model="purchase.order", amount=None if amount is None else Decimal(amount), currency="EUR", **extra)


TIERS = (
    {"name": "small", "amount_below": 10000, "stages": [stage()]},
    {"name": "large", "amount_at_least": 10000, "stages": [stage(), stage("apac", deliver="dm", channel=None)]},
)
LEVELLED = (
    {"name": "everywhere", "stages": [stage()]},
    {"name": "eu", "regions": ["EU"], "stages": [stage()]},
    {"name": "eu-procurement", "business_units": ["EU Procurement"], "stages": [stage()]},
)


@pytest.mark.parametrize(
    "where, rule, level",
    [
        ({"region": "EU", "business_unit": "EU Procurement"}, "eu-procurement", "local"),
        ({"region": "EU", "business_unit": "EU Logistics"}, "eu", "regional"),
        ({"region": "eu"}, "eu", "regional"),
        ({"region": "APAC"}, "everywhere", "global"),
    ],
)
def test_the_most_specific_matching_rule_wins(where, rule, level):
    plan = plan_route(build(*LEVELLED), facts(**where))

    assert (plan.rule, plan.level) == (rule, level)


def test_the_plan_says_which_rules_it_beat():
    plan = plan_route(build(*LEVELLED), facts(region="EU", business_unit="EU Procurement"))

    assert plan.reasons == (
        "business unit EU Procurement is one of: EU Procurement",
        "local beats global rule 'everywhere'",
        "local beats regional rule 'eu'",
    )


@pytest.mark.parametrize(
    "amount, rule, reason",
    [
        ("9999.99", "small", "amount 9,999.99 < 10,000"),
        ("10000", "large", "amount 10,000.00 ≥ 10,000"),
        ("12500", "large", "amount 12,500.00 ≥ 10,000"),
    ],
)
def test_amount_tiers_meet_at_the_boundary(amount, rule, reason):
    plan = plan_route(build(*TIERS), facts(amount))

    assert (plan.rule, plan.reasons) == (rule, (reason,))


def test_a_two_stage_plan_takes_sla_and_quorum_from_the_rule_or_the_defaults():
    config = build(
        {"name": "all", "stages": [stage(mode="quorum", quorum=2, sla_hours=4), stage("apac", escalate_to="managers")]},
        defaults={"sla_hours": 12},
    )

    plan = plan_route(config, facts())

    assert [(s.index, s.role, s.mode, s.quorum, s.sla_hours, s.escalate_to) for s in plan.stages] == [
        (0, "managers", StageMode.QUORUM, 2, 4.0, ()),
        (1, "apac", StageMode.FIRST, 1, 12.0, ("managers",)),
    ]


EXCEPTIONS = (
    {"name": "po", "stages": [stage()]},
    {"name": "eu-compliance", "regions": ["EU"], "exception_types": ["compliance_review", "credit_hold"], "stages": [stage()]},
)


@pytest.mark.parametrize(
    "exception, rule", [("compliance_review", "eu-compliance"), ("credit_hold", "eu-compliance"), ("stockout", "po"), (None, "po")]
)
def test_an_exception_rule_takes_only_its_exception_types(exception, rule):
    assert plan_route(build(*EXCEPTIONS), facts(region="EU", exception_type=exception)).rule == rule


def test_no_match_names_the_facts_and_the_rule_to_add():
    config = build({"name": "eu", "regions": ["EU"], "stages": [stage()]})

    with pytest.raises(NoRouteError) as caught:
        plan_route(config, facts("12500", region="APAC"))

    assert str(caught.value) == (
        "No routing rule matches source=odoo model=purchase.order amount=12,500.00 EUR region=APAC. "
        "Fix: add a rule for source=odoo model=purchase.order region=APAC, or a global fallback rule "
        "(one without regions or business_units). `handoff routes explain` shows why each rule was skipped."
    )


def test_explain_names_the_winner_and_why_every_other_rule_lost():
    config = build(
        {"name": "odoo-small", "source": "odoo", "amount_below": 10000, "stages": [stage()]},
        {"name": "dataverse", "source": "dataverse", "stages": [stage()]},
        {"name": "eu-small", "regions": ["EU"], "amount_below": 1000, "stages": [stage()]},
        {"name": "eu-compliance", "business_units": ["EU Procurement"], "exception_types": ["compliance_review"],
         "amount_at_least": 10000, "stages": [stage()]},
        {"name": "eu-any", "business_units": ["EU Logistics", "EU Procurement"], "model": "purchase.order",
         "amount_below": 10000, "stages": [stage()]},
    )

    lines = explain(config, facts("5000", region="EU", business_unit="EU Procurement"))

    assert lines == [
        "Facts: source=odoo model=purchase.order amount=5,000.00 EUR region=EU business_unit=EU Procurement",
        "- rule 'odoo-small' (global): matches, but loses to local rule 'eu-any' (local beats global)",
        "- rule 'dataverse' (global): skipped, source odoo is not dataverse",
        "- rule 'eu-small' (regional): skipped, amount 5,000.00 is not < 1,000",
        "- rule 'eu-compliance' (local): skipped, no exception type; the rule needs one of: compliance_review",
        "- rule 'eu-any' (local): matches: model purchase.order; business unit EU Procurement is one of: EU Logistics, "
        "EU Procurement; amount 5,000.00 < 10,000",
        "Winner: rule 'eu-any' (local), the most specific level with a match (local > regional > global).",
    ]


def test_explain_without_a_winner_ends_with_the_fix():
    lines = explain(build(*TIERS), facts(None))

    assert lines[1:] == [
        "- rule 'small' (global): skipped, amount unknown; the rule needs amount < 10,000",
        "- rule 'large' (global): skipped, amount unknown; the rule needs amount ≥ 10,000",
        "No winner. No routing rule matches source=odoo model=purchase.order. Fix: add a rule for source=odoo "
        "model=purchase.order, or a global fallback rule (one without regions or business_units). "
        "`handoff routes explain` shows why each rule was skipped.",
    ]


@pytest.mark.parametrize(
    "first, second",
    [
        ({"amount_below": 10000}, {"amount_at_least": 10000}),
        ({"exception_types": ["stockout"]}, {"exception_types": ["credit_hold"]}),
        ({"source": "odoo"}, {"source": "dataverse"}),
        ({"model": "purchase.order"}, {"model": "account.move"}),
        ({"regions": ["EU"]}, {"regions": ["APAC"]}),
        ({"business_units": ["EU Procurement"]}, {"business_units": ["APAC Procurement"]}),
        ({}, {"regions": ["EU"]}),
    ],
)
def test_rules_that_cannot_both_match_load(first, second):
    build({"name": "a", **first, "stages": [stage()]}, {"name": "b", **second, "stages": [stage()]})


@pytest.mark.parametrize(
    "first, second, shared",
    [
        ({"amount_below": 10000}, {"amount_at_least": 5000}, "amounts from 5,000 to below 10,000 with any exception type or none"),
        ({"exception_types": ["stockout", "credit_hold"]}, {"exception_types": ["credit_hold"]}, "any amount with exception type credit_hold"),
        ({"regions": ["EU"]}, {"regions": ["eu", "APAC"], "source": "odoo"}, "any amount with any exception type or none"),
        ({}, {"exception_types": ["stockout"], "amount_at_least": 100}, "amounts ≥ 100 with exception type stockout"),
    ],
)
def test_rules_of_one_level_that_can_both_match_are_refused_naming_both(first, second, shared):
    with pytest.raises(RoutingInvalid) as caught:
        build({"name": "a", **first, "stages": [stage()]}, {"name": "b", **second, "stages": [stage()]})

    level = build({"name": "a", **first, "stages": [stage()]}).rules[0].level
    assert caught.value.problems == [
        f"rules.1: rule 'b' overlaps rule 'a' at rules.0: both are {level} and both match {shared}, so neither wins. "
        "Fix: make the amount tiers disjoint or narrow exception_types."
    ]


def test_a_channel_stage_goes_to_the_channel_on_the_rules_platform():
    config = build({"name": "teams", "platform": "teams", "stages": [stage()]}, channels=TEAMS_TOO)
    plan = plan_route(config, facts())

    assert platform_of(config, plan) == "teams"
    assert targets_for_stage(config, plan, plan.stages[0], set()) == [
        Target(platform="teams", kind="channel", address="19:proc@thread.tacv2")
    ]


def test_dm_targets_leave_out_the_requester():
    config = build({"name": "dm", "stages": [stage(deliver="dm", channel=None)]})
    plan = plan_route(config, facts())

    assert targets_for_stage(config, plan, plan.stages[0], {"marc"}) == [
        Target(platform="slack", kind="dm", address="U0DANA", person="dana"),
        Target(platform="slack", kind="dm", address="U0ERIK", person="erik"),
    ]


@pytest.mark.parametrize("delivery", [{"deliver": "dm", "channel": None}, {}])
def test_a_role_whose_only_member_is_the_requester_plans_but_has_no_targets(delivery):
    config = build({"name": "buyers", "stages": [stage("buyers", **delivery)]})

    plan = plan_route(config, facts())

    assert plan.stages[0].role == "buyers"
    assert targets_for_stage(config, plan, plan.stages[0], {"marc"}) == []


def test_a_plan_whose_rule_was_removed_falls_back_to_the_default_platform():
    config = build({"name": "teams", "platform": "teams", "stages": [stage()]}, channels=TEAMS_TOO)

    assert platform_of(config, plan_route(config, facts())) == "teams"
    assert platform_of(config, RoutePlan(rule="gone", level="global", stages=())) == "slack"
    assert ops_target(config, "teams") == Target(platform="teams", kind="channel", address="19:ops@thread.tacv2")


def test_only_members_of_the_stages_role_can_decide():
    config = build(*TIERS)
    stage_one = plan_route(config, facts()).stages[0]

    assert [p.key for p in members(config, "managers")] == ["dana", "erik", "marc"]
    assert can_decide(config, stage_one, config.people["dana"])
    assert not can_decide(config, stage_one, config.people["gus"])
    assert members(config, "role-removed-since") == []


@pytest.mark.parametrize(
    "platform, user_id, key",
    [("slack", "U0DANA", "dana"), ("teams", DANA_TEAMS.upper(), "dana"), ("slack", "u0dana", "dana"), ("slack", "U0NOBODY", None), ("teams", "U0DANA", None), ("teams", "", None)],
)
def test_a_chat_identity_maps_to_its_person(platform, user_id, key):
    person = person_for_identity(build(*TIERS), platform, user_id)

    assert (person.key if person else None) == key


@pytest.mark.parametrize(
    "erp_person, key",
    [
        (ErpPerson(name="Marc", login="MARC@example.com"), "marc"),
        (ErpPerson(name="Erik", login="erik.l", email="erik@example.com"), "erik"),
        (ErpPerson(name="Someone", login="dana@example.com"), None),  # logins match logins, emails match emails
        (ErpPerson(name="Stranger", login="x", email="x@example.com"), None),
        (None, None),
    ],
)
def test_an_erp_requester_maps_by_login_then_email(erp_person, key):
    person = person_for_erp(build(*TIERS), erp_person)

    assert (person.key if person else None) == key


def test_ops_alerts_go_to_the_ops_channel_falling_back_to_the_default_platform():
    config = build(*TIERS)

    assert ops_target(config, "slack") == Target(platform="slack", kind="channel", address="C0OPS")
    assert ops_target(config, "teams") == Target(platform="slack", kind="channel", address="C0OPS")


def test_route_facts_come_from_the_erp_record():
    record = ErpRecord(
        ref=RecordRef(source="dataverse", model="purchaseorder", record_id="1"),
        reference="PO-1", state="draft", vendor="Acme", amount=Decimal("42.50"), currency="USD",
        business_unit="US Procurement", region="NA", exception_type="stockout",
    )

    assert RouteFacts.from_record(record) == RouteFacts(
        source="dataverse", model="purchaseorder", amount=Decimal("42.50"), currency="USD",
        exception_type="stockout", business_unit="US Procurement", region="NA",
    )


def test_people_take_their_key_from_the_table_name():
    assert build(*TIERS).people["dana"].key == "dana"
